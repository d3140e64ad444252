import { PassThrough } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ReplayableBody } from '../cosmos/client.js';
import type { KeepMemory, MeasuringStream } from './measure.js';

/**
 * What all parts in flight may keep for replays, together: a busy instance stays within it, and the
 * parts past it stream once (a throttled one is then a 503 with Retry-After).
 */
export class ReplayMemory implements KeepMemory {
  #available: number;

  constructor(bytes: number) {
    this.#available = bytes;
  }

  take(bytes: number): boolean {
    if (bytes > this.#available) return false;
    this.#available -= bytes;
    return true;
  }

  give(bytes: number): void {
    this.#available += bytes;
  }
}

/**
 * A part sent upstream as it arrives, while the measuring step keeps a copy of up to `limit` bytes,
 * so that a throttled create can be sent again without holding the first attempt back. The first
 * attempt reads through a stream of its own: when undici gives it up (Cosmos DB answered early), the
 * part itself is untouched and the rest of it can still be read.
 */
export class ReplayablePart implements ReplayableBody {
  readonly first: PassThrough;
  readonly #meter: MeasuringStream;

  /** `meter` must be keeping what passes (`meter.keep`) from its first byte. */
  constructor(meter: MeasuringStream) {
    this.#meter = meter;
    this.first = new PassThrough();
    // `pipe` carries data, not failures: a part that breaks (too large, the caller gone) must fail the
    // upload too, or undici would wait for the rest forever.
    meter.on('error', (err) => this.first.destroy(err));
    if (meter.errored) this.first.destroy(meter.errored);
    // Whoever reads `first` (undici) reports its failure; before that (a refusal before any upload)
    // an unlistened 'error' would crash the process.
    this.first.on('error', () => {});
    meter.pipe(this.first);
  }

  /**
   * The whole part for another attempt: what was kept, after reading the rest of the part if Cosmos
   * DB answered before it was all sent. Undefined when the part is larger than the limit.
   */
  async replay(): Promise<Buffer | undefined> {
    const meter = this.#meter;
    meter.unpipe(this.first);
    this.first.destroy();
    if (!meter.keeping) return undefined;
    if (!meter.readableEnded) {
      // Whatever comes out now was kept as it passed; reading it only lets the rest of the part through.
      await new Promise<void>((resolve, reject) => {
        const overflow = () => {
          meter.pause();
          resolve();
        };
        meter.once('overflow', overflow);
        finished(meter).then(
          () => {
            meter.off('overflow', overflow);
            resolve();
          },
          (err: Error) => {
            meter.off('overflow', overflow);
            reject(err);
          },
        );
        meter.resume();
      });
    }
    return meter.kept();
  }

  /** The upload is over, one way or the other: what was kept goes back to the shared memory. */
  release(): void {
    this.#meter.dropKept();
  }
}
