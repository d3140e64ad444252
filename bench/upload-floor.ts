// The least a Node bridge does for a multipart upload of one file: node:http takes the request, the
// key is checked, each body chunk is searched once for the closing delimiter (`Buffer#indexOf`) and
// hashed, and the file's bytes go to the sink as raw media through an undici pool, a chunk at a time
// with backpressure; the answer names the size and SHA-256. The same runtime settings as the bridge
// (src/runtime.ts); no busboy, limits, rate watch, replay, ownership mark or web-standard Request and
// Response: the per-byte floor of a bridge built on node:http and undici, measured beside the bridges
// (issue 12's prototype "hashes and scans with indexOf in one pass, with fewer stream hops"). One
// well-formed file part only. The benchmark's client checks the size and SHA-256 of every answer.
// Usage: TARGET=http://127.0.0.1:<port> PORT=<port|0> FUNCTION_KEY=... node upload-floor.js
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Pool } from 'undici';
import { tuneRuntime } from '../src/runtime.js';
import { ATTACHMENTS_PATH, signedCreateHeaders } from './signing.js';

await tuneRuntime(process.env);
const pool = new Pool(process.env.TARGET ?? '', { connections: 64 });
const functionKey = process.env.FUNCTION_KEY ?? '';
const HEADER_END = Buffer.from('\r\n\r\n');
const CR = 13;

function answer(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function upload(req: IncomingMessage, res: ServerResponse): void {
  const boundary = /boundary=([^;]+)/.exec(req.headers['content-type'] ?? '')?.[1];
  if (req.headers['x-functions-key'] !== functionKey || !boundary) {
    req.resume();
    answer(res, boundary ? 401 : 400, { code: boundary ? 'Unauthorized' : 'MissingBoundary' });
    return;
  }
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const hash = createHash('sha256');
  let size = 0;
  let head: Buffer | undefined = Buffer.alloc(0);
  /** The end of the last chunk, held back while it may be the start of the delimiter. */
  let held: Buffer | undefined;
  let done = false;
  const file = new Readable({ read: () => req.resume() });
  const send = (bytes: Buffer) => {
    if (bytes.length === 0) return;
    hash.update(bytes);
    size += bytes.length;
    if (!file.push(bytes)) req.pause();
  };
  const finish = (bytes: Buffer, end: number) => {
    send(bytes.subarray(0, end));
    done = true;
    file.push(null);
  };
  const start = (id: string) => {
    pool
      .request({
        method: 'POST',
        path: ATTACHMENTS_PATH,
        headers: { ...signedCreateHeaders(), 'content-type': 'application/octet-stream', slug: id },
        body: file,
      })
      .then(async (reply) => {
        const text = await reply.body.text();
        if (reply.statusCode !== 201) answer(res, 502, { code: 'Upstream', message: text.slice(0, 200) });
        else answer(res, 201, { attachments: [{ id, size, sha256: hash.digest('hex') }] });
      })
      .catch((err: unknown) => answer(res, 502, { code: 'UpstreamUnreachable', message: String(err) }));
  };
  req.on('data', (chunk: Buffer) => {
    if (done) return;
    if (head) {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf(HEADER_END);
      if (end < 0) return;
      const id = /filename="([^"]+)"/.exec(head.subarray(0, end).toString('latin1'))?.[1] ?? 'file';
      chunk = head.subarray(end + HEADER_END.length);
      head = undefined;
      start(id);
    }
    if (held) {
      // The delimiter may straddle the held bytes and this chunk: search just that seam.
      const seam = Buffer.concat([held, chunk.subarray(0, delimiter.length - 1)]);
      const at = seam.indexOf(delimiter);
      if (at >= 0) return finish(seam, at);
      send(held);
      held = undefined;
    }
    const at = chunk.indexOf(delimiter);
    if (at >= 0) return finish(chunk, at);
    // Hold back the tail only when it could start a delimiter (it begins with CR).
    const tail = chunk.lastIndexOf(CR, chunk.length - 1);
    if (tail >= 0 && tail > chunk.length - delimiter.length) {
      held = chunk.subarray(tail);
      chunk = chunk.subarray(0, tail);
    }
    send(chunk);
  });
  req.on('end', () => {
    if (!done) file.destroy(new Error('the form ended before its closing delimiter'));
  });
}

const server = createServer((req, res) => upload(req, res));
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  console.log(`upload floor listening on http://127.0.0.1:${port}`);
});
process.once('SIGTERM', () => process.exit(0));
