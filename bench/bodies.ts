import { createHash, randomBytes } from 'node:crypto';

export const MiB = 1024 * 1024;

/**
 * File content: one random MiB repeated. Random so nothing compresses or short-cuts the multipart
 * boundary search; repeated (the same Buffer yielded again) so generating load costs the client
 * almost no CPU, which it would otherwise take from the processes being measured on a small machine.
 */
export const BLOCK = randomBytes(MiB);

/** The file's bytes, in writes of at most one MiB. */
export function* fileChunks(bytes: number): Generator<Buffer> {
  for (let sent = 0; sent < bytes; sent += MiB) {
    yield bytes - sent >= MiB ? BLOCK : BLOCK.subarray(0, bytes - sent);
  }
}

export function fileSha256(bytes: number): string {
  const hash = createHash('sha256');
  for (const chunk of fileChunks(bytes)) hash.update(chunk);
  return hash.digest('hex');
}

export interface MultipartBody {
  contentType: string;
  /** Content-Length of the whole body. */
  length: number;
  chunks: () => Generator<Buffer>;
}

/** A `multipart/form-data` body with one file part named `file`, as a browser or mobile app sends it. */
export function multipartBody(bytes: number, filename: string): MultipartBody {
  const boundary = `----benchBoundary${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    length: head.length + bytes + tail.length,
    *chunks() {
      yield head;
      yield* fileChunks(bytes);
      yield tail;
    },
  };
}
