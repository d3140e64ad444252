import { Transform, type TransformCallback } from 'node:stream';

/**
 * Counts multipart delimiters (`CRLF--boundary`) as the body passes, without holding it. busboy skips
 * some parts without a word (no `form-data` Content-Disposition, a `filename*` in a character set it
 * cannot decode); comparing its parts with this count turns such a silent loss into an error.
 */
export class DelimiterCounter extends Transform {
  count = 0;
  readonly #pattern: Buffer;
  /** The last bytes seen, for delimiters split across chunks; starts as CRLF, as busboy assumes too. */
  #tail = Buffer.from('\r\n');

  constructor(boundary: string) {
    super();
    this.#pattern = Buffer.from(`\r\n--${boundary}`, 'latin1');
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const pattern = this.#pattern;
    // Delimiters that start in the tail and end in this chunk...
    const seam = Buffer.concat([this.#tail, chunk.subarray(0, pattern.length - 1)]);
    for (
      let at = seam.indexOf(pattern);
      at !== -1 && at < this.#tail.length;
      at = seam.indexOf(pattern, at + 1)
    ) {
      this.count += 1;
    }
    // ...and those wholly inside it.
    for (let at = chunk.indexOf(pattern); at !== -1; at = chunk.indexOf(pattern, at + 1)) this.count += 1;
    const keep = pattern.length - 1;
    this.#tail =
      chunk.length >= keep
        ? Buffer.from(chunk.subarray(chunk.length - keep))
        : Buffer.concat([this.#tail, chunk]).subarray(-keep);
    callback(null, chunk);
  }
}
