import { pipeline, type Readable } from 'node:stream';
import type { FileUpload } from '../../attachments/writer.js';
import { MeasuringStream } from '../../multipart/measure.js';
import { ReplayablePart } from '../../multipart/replay.js';
import type { RequestContext } from '../context.js';

/**
 * Bytes a file must have sent before it goes upstream. Until then it holds no connection to Cosmos
 * DB or Blob Storage, so callers that crawl never tie up the connections other callers need; a file
 * that ends within it is sent whole, over the pool for small requests.
 */
export const START_UPLOAD_BYTES = 64 * 1024;

/**
 * What a part's `maxBytes` may exceed REPLAY_BUFFER_BYTES by and the part still be kept: the bound
 * counts the part's headers and the form's framing too (busboy takes part headers up to 16 KiB).
 */
const FRAMING_ALLOWANCE = 16 * 1024;

/**
 * A file's bytes (a part, or a raw body) ready to go upstream: counted, hashed and capped at
 * MAX_PART_BYTES as they pass. With managed media, up to REPLAY_BUFFER_BYTES are kept as they stream so
 * a throttled create can be sent again (Blob Storage uploads keep their own blocks for retries), unless
 * `maxBytes` (what the request's declared length leaves room for) says the file cannot fit: keeping
 * part of a file only to drop it costs memory and garbage collection for nothing.
 * `release()` gives what was kept back to the shared replay memory.
 */
export async function fileUpload(
  source: Readable,
  id: string,
  contentType: string,
  { settings, media, replayMemory }: RequestContext,
  maxBytes?: number,
): Promise<FileUpload & { release(): void }> {
  const meter = new MeasuringStream(settings.limits.maxPartBytes, 'MAX_PART_BYTES', START_UPLOAD_BYTES);
  const replayLimit = settings.upstream.replayBufferBytes;
  const canFit = maxBytes === undefined || maxBytes <= replayLimit + FRAMING_ALLOWANCE;
  const replayable = media.kind === 'managed' && replayLimit > 0 && canFit;
  if (replayable) meter.keep(replayLimit, replayMemory);
  // Errors surface where `meter` is read: in the upstream call (or a replay).
  pipeline(source, meter, () => {});
  await meter.readAhead(START_UPLOAD_BYTES);
  // Failed before it went anywhere (too large, a broken form, the caller gone): nothing to send.
  if (meter.errored) throw meter.errored;
  const whole = meter.takeWhole();
  return {
    id,
    contentType,
    body: whole ?? (replayable ? new ReplayablePart(meter) : meter),
    measured: () => meter.measured(),
    measurement: () => meter.measurement,
    async finish() {
      if (meter.measurement) return meter.measurement;
      if (meter.errored || meter.destroyed) return undefined;
      // What the upstream did not take goes nowhere: only its size and hash are wanted now.
      meter.unpipe();
      meter.resume();
      return meter.measured().catch(() => undefined);
    },
    release: () => meter.dropKept(),
  };
}
