import { Readable, Transform, type TransformCallback } from 'node:stream';
import { BridgeError, isCallerError, type CallerError } from './errors.js';

/** The caller's request body as a Node stream, capped at `maxBytes` and watched for breaking off. */
export interface CallerBody {
  readonly stream: Readable;
  /**
   * How the caller's side failed, if it did: the 413 for crossing the cap, or RequestAborted when its
   * connection broke. It outranks whatever that failure caused downstream.
   */
  failure(): CallerError | undefined;
}

export function callerBody(request: Request, maxBytes: number): CallerBody {
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) throw requestTooLarge(maxBytes);
  const source = request.body ? Readable.fromWeb(request.body) : Readable.from([]);
  let failure: CallerError | undefined;
  const capped = new ByteCap(maxBytes, (err) => (failure ??= err));
  // The caller's stream breaking is the caller leaving, whatever error (ECONNRESET...) it carries:
  // say so at the source, so nothing downstream mistakes it for a broken connection to Cosmos DB.
  source.on('error', () => {
    failure ??= callerLeft();
    capped.destroy(failure);
  });
  // Failures are kept in `failure`; without a listener, one raised after the core stopped reading
  // (the caller leaving after an early answer) would crash the process.
  capped.on('error', () => {});
  // Not `pipeline`: when the core gives up on the body, destroying `capped` must not cancel the
  // caller's stream here; the host adapter decides how to end the connection after the answer.
  source.pipe(capped);
  return { stream: capped, failure: () => failure };
}

/** Reads a small body (JSON) whole, refusing it as soon as it grows past `maxBytes`. */
export async function readSmallBody(request: Request, maxBytes: number, limitName: string): Promise<Buffer> {
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) throw bodyTooLarge(maxBytes, limitName);
  if (!request.body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of request.body as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      if (total > maxBytes) throw bodyTooLarge(maxBytes, limitName);
      chunks.push(chunk);
    }
  } catch (err) {
    if (isCallerError(err)) throw err;
    throw callerLeft();
  }
  return Buffer.concat(chunks);
}

export function decodeUtf8(bytes: Buffer, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new BridgeError('InvalidJson', `${what} is not valid UTF-8.`);
  }
}

export function callerLeft(): BridgeError {
  return new BridgeError('RequestAborted', 'The caller closed the request before it was complete.');
}

function requestTooLarge(maxBytes: number): BridgeError {
  return bodyTooLarge(maxBytes, 'MAX_REQUEST_BYTES');
}

function bodyTooLarge(maxBytes: number, limitName: string): BridgeError {
  return new BridgeError(
    'PayloadTooLarge',
    `The request body is larger than ${limitName} (${maxBytes} bytes).`,
  );
}

/** Passes bytes through until more than `maxBytes` have come, then fails with a 413. */
class ByteCap extends Transform {
  #bytes = 0;
  readonly #maxBytes: number;
  readonly #onExceeded: (err: BridgeError) => void;

  constructor(maxBytes: number, onExceeded: (err: BridgeError) => void) {
    super();
    this.#maxBytes = maxBytes;
    this.#onExceeded = onExceeded;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.#maxBytes) {
      const err = requestTooLarge(this.#maxBytes);
      this.#onExceeded(err);
      callback(err);
    } else {
      callback(null, chunk);
    }
  }
}

/**
 * The error to answer with after a request failed: the caller's own failure first (its 413, or it
 * left), then an error meant for the caller, then what the form itself failed with.
 */
export function rootCause(
  err: unknown,
  body: CallerBody,
  aborted: boolean,
  formFailure?: Error,
): CallerError {
  const callerFailure = body.failure();
  if (callerFailure) return callerFailure;
  if (isCallerError(err)) return err;
  if (formFailure && isCallerError(formFailure)) return formFailure;
  if (aborted) return callerLeft();
  throw err;
}
