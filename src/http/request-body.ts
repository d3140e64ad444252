import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { BridgeError, isCallerError, type CallerError } from './errors.js';
import { nodeBodyOf } from './node-body.js';

/** How much and how fast a caller must send its body. */
export interface BodyLimits {
  maxBytes: number;
  /** The limit's name, for the 413's message. */
  limitName: string;
  /** Slowest accepted average rate once `graceMs` of waiting have passed (0: any rate). */
  minBytesPerSecond: number;
  graceMs: number;
}

/** How often the rate is checked. */
const RATE_CHECK_MS = 1_000;
/**
 * After an early answer the rest of a body is read and dropped, for at most this long and this much
 * (as Kestrel does), so the caller can finish sending and read the answer, and the connection it came
 * on (the host's, to this worker) is free again; past either, the body is cancelled.
 */
const DRAIN_MS = 5_000;
const DRAIN_BYTES = 8 * 1024 * 1024;

/** The caller's request body as a Node stream, capped, watched for breaking off and for crawling. */
export interface CallerBody {
  readonly stream: Readable;
  /**
   * How the caller's side failed, if it did: the 413 for crossing the cap, the 408 for sending too
   * slowly, or RequestAborted when its connection broke. It outranks whatever that failure caused
   * downstream.
   */
  failure(): CallerError | undefined;
}

export function callerBody(request: Request, limits: BodyLimits): CallerBody {
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > limits.maxBytes) throw bodyTooLarge(limits);
  // The host's own Node stream when it names one (see node-body.ts), else the web stream adapted.
  const source = nodeBodyOf(request);
  let failure: CallerError | undefined;
  const fail = (err: CallerError) => {
    failure ??= err;
    capped.destroy(failure);
  };
  const capped = new ByteCap(limits, (err) => (failure ??= err));
  // The caller's stream breaking is the caller leaving, whatever error (ECONNRESET...) it carries:
  // say so at the source, so nothing downstream mistakes it for a broken connection to Cosmos DB.
  source.on('error', () => fail(callerLeft()));
  // Failures are kept in `failure`; without a listener, one raised after the core stopped reading
  // (the caller leaving after an early answer) would crash the process.
  capped.on('error', () => {});
  watchRate(source, capped, limits, fail);
  // Not `pipeline`: when the core gives up on the body, destroying `capped` must not cancel the
  // caller's stream at once; what is left of it is drained first.
  source.pipe(capped);
  capped.once('close', () => {
    if (!source.readableEnded) drainThenCancel(source, capped);
  });
  return { stream: capped, failure: () => failure };
}

/** Reads and drops what the caller still sends, up to DRAIN_BYTES or DRAIN_MS, then cancels the body. */
function drainThenCancel(source: Readable, capped: Writable): void {
  source.unpipe(capped);
  let allowance = DRAIN_BYTES;
  const cancel = () => {
    clearTimeout(timer);
    source.destroy();
  };
  const timer = setTimeout(cancel, DRAIN_MS).unref();
  source.on('data', (chunk: Buffer) => {
    allowance -= chunk.length;
    if (allowance < 0) cancel();
  });
  source.once('end', () => clearTimeout(timer));
  source.once('close', () => clearTimeout(timer));
  source.resume();
}

/**
 * A caller that sends slower than the minimum rate is cut off with 408, as Kestrel does with
 * MinRequestBodyDataRate: the average over the time the bridge was waiting for the caller (not while
 * it held the caller back, the source paused by backpressure), checked once the grace period is over.
 */
function watchRate(
  source: Readable,
  capped: ByteCap,
  limits: BodyLimits,
  fail: (err: CallerError) => void,
): void {
  if (limits.minBytesPerSecond === 0) return;
  let waitedMs = 0;
  let last = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    if (!source.isPaused()) waitedMs += now - last;
    last = now;
    if (waitedMs > limits.graceMs && capped.bytes < (limits.minBytesPerSecond * waitedMs) / 1000) {
      stop();
      fail(
        new BridgeError(
          'RequestTimeout',
          `The request body came slower than MIN_UPLOAD_BYTES_PER_SECOND (${limits.minBytesPerSecond} bytes per second).`,
        ),
      );
    }
  }, RATE_CHECK_MS).unref();
  const stop = () => clearInterval(timer);
  source.once('end', stop);
  source.once('close', stop);
  capped.once('close', stop);
}

/** Reads a small body (JSON) whole, refusing it as soon as it grows past the limit. */
export async function readSmallBody(request: Request, limits: BodyLimits): Promise<Buffer> {
  const body = callerBody(request, limits);
  const chunks: Buffer[] = [];
  // Events rather than an async iterator: this runs for every JSON create, and the iterator's
  // promises per chunk and its own end-of-stream watcher cost more than reading the body.
  await new Promise<void>((resolve, reject) => {
    const { stream } = body;
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', resolve);
    stream.once('error', (err) => reject(body.failure() ?? (isCallerError(err) ? err : callerLeft())));
    // 'close' follows 'end' too; only a close without it is the caller leaving (and an error is
    // built only then: capturing its stack costs more than the rest of reading a small body).
    stream.once('close', () => {
      if (!stream.readableEnded) reject(body.failure() ?? callerLeft());
    });
  });
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

function bodyTooLarge({ maxBytes, limitName }: BodyLimits): BridgeError {
  return new BridgeError(
    'PayloadTooLarge',
    `The request body is larger than ${limitName} (${maxBytes} bytes).`,
  );
}

/** Passes bytes through until more than the limit have come, then fails with a 413. */
class ByteCap extends Transform {
  bytes = 0;
  readonly #limits: BodyLimits;
  readonly #onExceeded: (err: BridgeError) => void;

  constructor(limits: BodyLimits, onExceeded: (err: BridgeError) => void) {
    super();
    this.#limits = limits;
    this.#onExceeded = onExceeded;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.#limits.maxBytes) {
      const err = bodyTooLarge(this.#limits);
      this.#onExceeded(err);
      callback(err);
    } else {
      callback(null, chunk);
    }
  }
}

/**
 * The error to answer with after a request failed: the caller's own failure first (its 413 or 408, or
 * it left), then an error meant for the caller, then what the form itself failed with.
 */
export function rootCause(err: unknown, body: CallerBody, aborted: boolean, formFailure?: Error): unknown {
  const callerFailure = body.failure();
  if (callerFailure) return callerFailure;
  if (isCallerError(err)) return err;
  if (formFailure && isCallerError(formFailure)) return formFailure;
  if (aborted) return callerLeft();
  return err;
}
