import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { finished } from 'node:stream/promises';
import { BridgeError } from '../http/errors.js';

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

  constructor(maxBytes: number, limitName = 'MAX_PART_BYTES') {
    super();
    this.#maxBytes = maxBytes;
    this.#limitName = limitName;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Size and hex SHA-256 of everything that passed, once the stream has ended. */
  async measured(): Promise<Measurement> {
    await finished(this);
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
    callback(null, chunk);
  }
}

export function tooLarge(maxBytes: number, limitName: string): BridgeError {
  return new BridgeError('PayloadTooLarge', `The part is larger than ${limitName} (${maxBytes} bytes).`);
}
