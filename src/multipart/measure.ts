import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { finished } from 'node:stream/promises';
import { BridgeError } from '../http/errors.js';

/** Memory shared by every part's kept copy; a part that cannot get more stops keeping. */
export interface KeepMemory {
  take(bytes: number): boolean;
  give(bytes: number): void;
}

export interface Measurement {
  size: number;
  sha256: string;
}

/**
 * A pass-through step that counts and hashes the bytes flowing to Cosmos DB and stops the flow the
 * moment the part grows past its limit. Being a step in the pipeline (not an extra 'data' listener)
 * means it sees every byte exactly once and backpressure still reaches the caller.
 */
export class MeasuringStream extends Transform {
  #bytes = 0;
  readonly #hash: Hash = createHash('sha256');
  readonly #maxBytes: number;
  readonly #limitName: string;
  #digest: string | undefined;
  /** The bytes that passed, kept while they fit `#keepLimit`; undefined once they do not (or never kept). */
  #kept: Buffer[] | undefined;
  #keepLimit = 0;
  #keepMemory: KeepMemory | undefined;

  constructor(maxBytes: number, limitName = 'MAX_PART_BYTES', readAheadBytes?: number) {
    super(readAheadBytes === undefined ? {} : { readableHighWaterMark: readAheadBytes });
    this.#maxBytes = maxBytes;
    this.#limitName = limitName;
  }

  /**
   * Resolves once `bytes` are waiting to be read, or everything came in, or the part failed (its
   * failure surfaces where it is read): the point to start sending it upstream.
   */
  async readAhead(bytes: number): Promise<void> {
    while (this.readableLength < bytes && !this.writableFinished && !this.destroyed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.off('ahead', done);
          this.off('finish', done);
          this.off('close', done);
          resolve();
        };
        this.on('ahead', done);
        this.once('finish', done);
        this.once('close', done);
      });
    }
  }

  /** Everything that came in, once it all did and none of it was read yet (a small part, whole). */
  takeWhole(): Buffer | undefined {
    if (!this.writableFinished || this.readableLength !== this.#bytes) return undefined;
    const chunks: Buffer[] = [];
    for (
      let chunk: Buffer | null = this.read() as Buffer | null;
      chunk !== null;
      chunk = this.read() as Buffer | null
    )
      chunks.push(chunk);
    this.dropKept();
    return Buffer.concat(chunks, this.#bytes);
  }

  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Keeps every byte that passes, up to `limit` bytes, so the part can be sent again. Kept here because
   * this step sees each byte exactly once and in order, whatever happens to the streams after it.
   */
  keep(limit: number, memory: KeepMemory): void {
    this.#kept = [];
    this.#keepLimit = limit;
    this.#keepMemory = memory;
  }

  /** Lets go of what was kept (the upload is over, or it outgrew what may be kept). */
  dropKept(): void {
    if (!this.#kept) return;
    this.#keepMemory?.give(this.#kept.reduce((sum, chunk) => sum + chunk.length, 0));
    this.#kept = undefined;
  }

  /** False once the part has outgrown what may be kept (an 'overflow' event says when). */
  get keeping(): boolean {
    return this.#kept !== undefined;
  }

  /** Everything that passed, once the stream has ended and if it was all kept. */
  kept(): Buffer | undefined {
    if (!this.readableEnded || !this.#kept) return undefined;
    const whole = Buffer.concat(this.#kept, this.#bytes);
    // Held as one buffer from now on: the same bytes as counted, not a second copy beside the chunks.
    this.#kept = [whole];
    return whole;
  }

  /**
   * Size and hex SHA-256 of everything that passed, once all of it came in. Whether anyone read it all
   * does not matter: an upstream that answered early leaves the rest of a part unread.
   */
  async measured(): Promise<Measurement> {
    await finished(this, { readable: false });
    return this.#measurement();
  }

  /** The same, now: undefined while bytes may still come (the part was not all taken in). */
  get measurement(): Measurement | undefined {
    return this.writableFinished ? this.#measurement() : undefined;
  }

  #measurement(): Measurement {
    this.#digest ??= this.#hash.digest('hex');
    return { size: this.#bytes, sha256: this.#digest };
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.#maxBytes) {
      callback(tooLarge(this.#maxBytes, this.#limitName));
      return;
    }
    this.#hash.update(chunk);
    if (this.#kept) {
      if (this.#bytes <= this.#keepLimit && this.#keepMemory!.take(chunk.length)) {
        this.#kept.push(chunk);
      } else {
        this.dropKept();
        this.emit('overflow');
      }
    }
    callback(null, chunk);
    this.emit('ahead');
  }
}

export function tooLarge(maxBytes: number, limitName: string): BridgeError {
  return new BridgeError('PayloadTooLarge', `The part is larger than ${limitName} (${maxBytes} bytes).`);
}
