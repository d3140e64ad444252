import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EmulatorError } from './errors.js';
import type { StoredMedia } from './store.js';

export interface MediaOptions {
  /** Where media files go. */
  dir: string;
  /** Hash and count the bytes but keep none (for benchmarks, so disk speed is not what is measured). */
  discard: boolean;
  /** The service's size limit for one request; crossing it is a 413 at once. */
  maxBytes: number;
}

/** Marks a request body that stopped before its end: the client went away. */
export class ClientAbort extends Error {}

/**
 * Streams a request body to a new media file, hashing as it goes. Nothing is kept if the body fails,
 * breaks off or grows past the limit. The request is piped, not handed to `pipeline`, so an early
 * 413 leaves its socket open for the answer.
 */
export async function receiveMedia(req: IncomingMessage, options: MediaOptions): Promise<StoredMedia> {
  const path = options.discard ? undefined : join(options.dir, `${randomUUID()}.media`);
  const meter = new Meter(options.maxBytes);
  const sink = path ? createWriteStream(path) : discardSink();
  const brokenOff = () => {
    if (!req.complete) meter.destroy(new ClientAbort('The client closed the connection mid-body.'));
  };
  req.once('close', brokenOff);
  req.once('error', brokenOff);
  req.pipe(meter);
  try {
    await pipeline(meter, sink);
    return { path, size: meter.size, sha256: meter.digest() };
  } catch (err) {
    req.unpipe(meter);
    if (path) await rm(path, { force: true });
    throw err;
  } finally {
    req.off('close', brokenOff);
    req.off('error', brokenOff);
  }
}

/** A media file's bytes, all of them or `start`..`end` (inclusive); undefined when media is discarded. */
export function openMedia(
  media: StoredMedia,
  range?: { start: number; end: number },
): NodeJS.ReadableStream | undefined {
  return media.path ? createReadStream(media.path, range) : undefined;
}

/**
 * A single `bytes=` range of a `Range` header, resolved against the size (RFC 9110 14.1.2): `a-b`,
 * `a-` or `-n` (the last n bytes). Undefined for a header to ignore (another unit, several ranges,
 * malformed: the whole media is sent), `'unsatisfiable'` for a range past the end (416).
 */
export function byteRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (match[2] !== '' && Number(match[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

export async function deleteMedia(media: StoredMedia): Promise<void> {
  if (media.path) await rm(media.path, { force: true });
}

class Meter extends Transform {
  size = 0;
  readonly #hash = createHash('sha256');
  readonly #maxBytes: number;

  constructor(maxBytes: number) {
    super();
    this.#maxBytes = maxBytes;
  }

  digest(): string {
    return this.#hash.digest('hex');
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.#maxBytes) {
      callback(new EmulatorError(413, 'RequestEntityTooLarge', 'Request size is too large.'));
      return;
    }
    this.#hash.update(chunk);
    callback(null, chunk);
  }
}

function discardSink(): Writable {
  return new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
}
