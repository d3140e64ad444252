// The least a bridge does for a multipart form of one file part, shared by the upload floors
// (bench/upload-floor.ts on node:http, bench/functions-floor.ts as a Functions app): the part's head is
// read up to its blank line for the file name, then each body chunk is searched once for the closing
// delimiter (`Buffer#indexOf`), holding back a chunk's tail only when it could start the delimiter,
// and hashed, and the file's bytes go to the sink as raw media through an undici pool with
// backpressure. One well-formed file part only; in single uploads the benchmark's client checks the
// answer's size and SHA-256 (in concurrent ones, its status).
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Pool } from 'undici';
import { ATTACHMENTS_PATH, signedCreateHeaders } from './signing.js';

const HEADER_END = Buffer.from('\r\n\r\n');
const CR = 13;

export interface OneFileSink {
  /** The part's head has been read: the file's bytes follow. */
  start(fileName: string): void;
  /** The file's next bytes. */
  bytes(chunk: Buffer): void;
  /** The closing delimiter was found: the file is complete. */
  end(): void;
}

/** Returns the function to feed each body chunk to; `done()` says whether the file was complete. */
export function scanOneFile(
  boundary: string,
  sink: OneFileSink,
): { feed: (chunk: Buffer) => void; done: () => boolean } {
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  let head: Buffer | undefined = Buffer.alloc(0);
  /** The end of the last chunk, held back while it may be the start of the delimiter. */
  let held: Buffer | undefined;
  let complete = false;
  const send = (bytes: Buffer) => {
    if (bytes.length > 0) sink.bytes(bytes);
  };
  const finish = (bytes: Buffer, end: number) => {
    send(bytes.subarray(0, end));
    complete = true;
    sink.end();
  };
  const feed = (chunk: Buffer): void => {
    if (complete) return;
    if (head) {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf(HEADER_END);
      if (end < 0) return;
      const name = /filename="([^"]+)"/.exec(head.subarray(0, end).toString('latin1'))?.[1] ?? 'file';
      chunk = head.subarray(end + HEADER_END.length);
      head = undefined;
      sink.start(name);
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
  };
  return { feed, done: () => complete };
}

export interface Answer {
  status: number;
  body: unknown;
}

/** Reads the form from `source` (paused while the upstream is behind) and sends its file on. */
export function uploadOneFile(source: Readable, boundary: string, pool: Pool): Promise<Answer> {
  return new Promise<Answer>((resolve) => {
    const hash = createHash('sha256');
    let size = 0;
    const file = new Readable({ read: () => source.resume() });
    const scan = scanOneFile(boundary, {
      start: (id) => {
        pool
          .request({
            method: 'POST',
            path: ATTACHMENTS_PATH,
            headers: { ...signedCreateHeaders(), 'content-type': 'application/octet-stream', slug: id },
            body: file,
          })
          .then(async (reply) => {
            const text = await reply.body.text();
            resolve(
              reply.statusCode === 201
                ? { status: 201, body: { attachments: [{ id, size, sha256: hash.digest('hex') }] } }
                : { status: 502, body: { code: 'Upstream', message: text.slice(0, 200) } },
            );
          })
          .catch((err: unknown) =>
            resolve({ status: 502, body: { code: 'UpstreamUnreachable', message: String(err) } }),
          );
      },
      bytes: (chunk) => {
        hash.update(chunk);
        size += chunk.length;
        if (!file.push(chunk)) source.pause();
      },
      end: () => file.push(null),
    });
    // A form that ends, or a caller that goes, before the closing delimiter: the upstream request is
    // cut (its connection goes back to the pool) and the answer settled once.
    const incomplete = () => {
      if (scan.done()) return;
      file.destroy(new Error('the form ended before its closing delimiter'));
      resolve({
        status: 400,
        body: { code: 'IncompleteForm', message: 'The form ended before its closing delimiter.' },
      });
    };
    source.on('data', scan.feed);
    source.once('end', incomplete);
    source.once('close', incomplete);
  });
}
