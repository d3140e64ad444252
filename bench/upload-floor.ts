// The least a Node bridge does for a multipart upload of one file: node:http takes the request, the
// key is checked, each body chunk is searched once for the closing delimiter (`Buffer#indexOf`) and
// hashed, and the file's bytes go to the sink as raw media through an undici pool, a chunk at a time
// with backpressure; the answer names the size and SHA-256. The same runtime settings as the bridge
// (src/runtime.ts); no busboy, limits, rate watch, replay, ownership mark or web-standard Request and
// Response: the per-byte floor of a bridge built on node:http and undici, measured beside the bridges
// (issue 12's prototype "hashes and scans with indexOf in one pass, with fewer stream hops"). One
// well-formed file part only (bench/one-file-upload.ts). In single uploads the benchmark's client
// checks the answer's size and SHA-256.
// Usage: TARGET=http://127.0.0.1:<port> PORT=<port|0> FUNCTION_KEY=... node upload-floor.js
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Pool } from 'undici';
import { tuneRuntime } from '../src/runtime.js';
import { uploadOneFile } from './one-file-upload.js';

await tuneRuntime(process.env);
const pool = new Pool(process.env.TARGET ?? '', { connections: 64 });
const functionKey = process.env.FUNCTION_KEY ?? '';

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
  void uploadOneFile(req, boundary, pool).then(({ status, body }) => answer(res, status, body));
}

const server = createServer((req, res) => upload(req, res));
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  console.log(`upload floor listening on http://127.0.0.1:${port}`);
});
process.once('SIGTERM', () => process.exit(0));
