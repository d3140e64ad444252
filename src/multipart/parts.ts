import { pipeline, type Readable } from 'node:stream';
import busboy from 'busboy';
import { BridgeError, isCallerError } from '../http/errors.js';
import { attachProbe } from './busboy-probe.js';
import { tooLarge } from './measure.js';

export interface MultipartLimits {
  maxPartBytes: number;
  maxParts: number;
  maxFiles: number;
  maxFields: number;
  maxFieldBytes: number;
}

/** Part headers past this many are ignored; a form part needs two (Content-Disposition, Content-Type). */
const MAX_PART_HEADER_PAIRS = 32;
/** busboy's limit on a part's header section (16 KiB), which counts towards what a part carries. */
const MAX_PART_HEADER_BYTES = 16 * 1024;
/** Text fields: anything else without a file name was meant as a file, and has no id. */
const TEXT_FIELD = /^(text\/|application\/json$)/;

export type FormPart =
  | { type: 'field'; name: string; value: string; mimeType: string }
  | {
      type: 'file';
      name: string;
      filename: string | undefined;
      mimeType: string;
      stream: Readable;
      /**
       * The most bytes the part can have, by the request's declared length: what is left of the body
       * from the chunk its headers ended in, less the shortest closing delimiter. Its headers (and, for
       * a part that starts within a chunk, what came before it there) are counted in too, so it can
       * exceed the part's size by that much. Undefined when the request declared no length.
       */
      maxBytes: number | undefined;
    };

/** The parts of a multipart body, one at a time, in order. */
export interface PartReader extends AsyncIterable<FormPart> {
  /**
   * Stops reading. Resolves with the form's own failure (malformed, over a limit, the caller gone),
   * which is the root cause when a part's upload broke off because of it.
   */
  close(): Promise<Error | undefined>;
}

/**
 * Adapts busboy's events to a pull-style reader. A file part must be consumed (or destroyed) before the
 * next part is asked for: busboy only parses on as the current file stream is read, so memory stays at
 * one stream buffer whatever the sizes.
 */
export function readMultipart(
  body: Readable,
  contentType: string,
  limits: MultipartLimits,
  onBodyError: (err: Error) => Error,
  declaredLength?: number,
): PartReader {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { 'content-type': contentType },
      defParamCharset: 'utf8',
      limits: {
        // busboy flags a part that reaches the limit exactly, so allow one byte more and let the
        // measuring step reject the first byte past MAX_PART_BYTES.
        fileSize: limits.maxPartBytes + 1,
        fieldSize: limits.maxFieldBytes + 1,
        files: limits.maxFiles,
        fields: limits.maxFields,
        // busboy's parts event fires on reaching the count; our own count below rejects the part
        // past it, and this stays as the backstop for parts busboy skips without an event.
        parts: limits.maxParts + 1,
        headerPairs: MAX_PART_HEADER_PAIRS,
      },
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : '';
    throw /boundary/i.test(message)
      ? new BridgeError('MissingBoundary', 'The multipart/form-data Content-Type has no boundary parameter.')
      : new BridgeError('MalformedMultipart', 'The multipart/form-data Content-Type is malformed.');
  }

  // Request bytes busboy was given before the chunk it is parsing now: a part whose headers end in
  // this chunk starts at or after it (see FormPart maxBytes).
  let given = 0;
  let chunkStart = 0;
  const write = parser._write.bind(parser);
  parser._write = (chunk: Buffer, encoding, callback) => {
    chunkStart = given;
    given += chunk.length;
    write(chunk, encoding, callback);
  };
  // The shortest close-delimiter that can follow a part: CRLF "--" boundary "--".
  const closing = 6 + (/boundary="?([^";]+)"?/i.exec(contentType)?.[1]?.length ?? 0);
  const maxBytesFromHere = () =>
    declaredLength === undefined ? undefined : Math.max(0, declaredLength - chunkStart - closing);

  const queue = new PartQueue();
  const overLimit = (limit: string, count: number) =>
    queue.fail(new BridgeError('PayloadTooLarge', `The form has more than ${count} ${limit}.`));

  // Watch busboy's own scan: refuse a part as soon as its headers say it cannot be used, and a text
  // field as soon as it grows past MAX_FIELD_BYTES, rather than when busboy reaches its end.
  let field: { name: string | undefined; bytes: number } | undefined;
  attachProbe(parser, {
    onPart(part) {
      field = undefined;
      if (part.kind === 'skipped') queue.fail(skippedPart());
      else if (part.kind === 'field') {
        if (TEXT_FIELD.test(part.mimeType)) field = { name: part.name, bytes: 0 };
        else
          queue.fail(
            new BridgeError(
              'MissingFilename',
              `The part "${part.name ?? ''}" (${part.mimeType}) has no file name to use as its attachment id.`,
            ),
          );
      }
    },
    onBytes(count) {
      if (field === undefined) return;
      field.bytes += count;
      if (field.bytes > limits.maxFieldBytes + MAX_PART_HEADER_BYTES + 4) {
        queue.fail(fieldTooLarge(field.name ?? '', limits.maxFieldBytes));
        field = undefined;
      }
    },
    onBoundary() {
      field = undefined;
    },
  });

  let parts = 0;
  const tooManyParts = () => ++parts > limits.maxParts;

  parser.on('file', (name, stream, info) => {
    if (tooManyParts()) {
      stream.resume();
      overLimit('parts', limits.maxParts);
      return;
    }
    // A part may fail before the consumer reached it (busboy parses a whole chunk at once, and
    // destroys the current file stream when the form breaks). Its error then reaches the consumer
    // through the queue or its own pipeline; without this listener it would crash the process.
    stream.on('error', () => {});
    stream.once('limit', () => {
      const err = tooLarge(limits.maxPartBytes, 'MAX_PART_BYTES');
      queue.fail(err);
      stream.destroy(err);
    });
    queue.push({
      type: 'file',
      name,
      filename: info.filename,
      mimeType: info.mimeType,
      stream,
      maxBytes: maxBytesFromHere(),
    });
  });
  parser.on('field', (name, value, info) => {
    if (tooManyParts()) {
      overLimit('parts', limits.maxParts);
      return;
    }
    if (info.valueTruncated) {
      queue.fail(fieldTooLarge(name, limits.maxFieldBytes));
      return;
    }
    queue.push({ type: 'field', name, value, mimeType: info.mimeType });
  });
  parser.on('partsLimit', () => overLimit('parts', limits.maxParts));
  parser.on('filesLimit', () => overLimit('files', limits.maxFiles));
  parser.on('fieldsLimit', () => overLimit('fields', limits.maxFields));

  // Whichever stream fails first is the cause; `pipeline` then destroys the other with the same error.
  // Once the consumer closes the reader, what follows (busboy calls an unfinished form an error) is
  // not the form's failure.
  let closedByConsumer = false;
  let firstFailure: { source: 'body' | 'parser'; err: Error } | undefined;
  const record = (source: 'body' | 'parser') => (err: Error) => {
    if (!closedByConsumer) firstFailure ??= { source, err };
  };
  body.on('error', record('body'));
  parser.on('error', record('parser'));
  const settled = new Promise<void>((resolve) => {
    pipeline(body, parser, (err) => {
      if (!err) {
        queue.end();
      } else if (firstFailure || !closedByConsumer) {
        const { source, err: cause } = firstFailure ?? { source: 'parser', err };
        if (isCallerError(cause)) queue.fail(cause);
        else if (source === 'body') queue.fail(onBodyError(cause));
        else queue.fail(malformed(cause));
      }
      resolve();
    });
  });

  return {
    [Symbol.asyncIterator]: () => queue.iterate(),
    async close() {
      closedByConsumer = true;
      parser.destroy();
      await settled;
      const failure = queue.failure;
      queue.end();
      return failure;
    },
  };
}

function fieldTooLarge(name: string, maxFieldBytes: number): BridgeError {
  return new BridgeError('PayloadTooLarge', `The field "${name}" is larger than ${maxFieldBytes} bytes.`);
}

function skippedPart(): BridgeError {
  return new BridgeError(
    'MalformedMultipart',
    'A part could not be read: it has no form-data Content-Disposition, or a filename* in a character set the bridge cannot decode.',
  );
}

function malformed(err: Error): BridgeError {
  return new BridgeError(
    'MalformedMultipart',
    /part header/i.test(err.message)
      ? "A part's headers are malformed or larger than 16 KiB."
      : `Malformed multipart body: ${err.message}.`,
  );
}

/** A small single-consumer queue between busboy's callbacks and the async iterator. */
class PartQueue {
  readonly #items: FormPart[] = [];
  #error: Error | undefined;
  #ended = false;
  #wake: (() => void) | undefined;

  push(part: FormPart): void {
    if (this.#ended || this.#error) {
      if (part.type === 'file') part.stream.resume();
      return;
    }
    this.#items.push(part);
    this.#notify();
  }

  get failure(): Error | undefined {
    return this.#error;
  }

  fail(err: Error): void {
    if (this.#error || this.#ended) return;
    this.#error = err;
    this.#notify();
  }

  end(): void {
    this.#ended = true;
    this.#notify();
  }

  async *iterate(): AsyncGenerator<FormPart> {
    for (;;) {
      if (this.#error) throw this.#error;
      const next = this.#items.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
