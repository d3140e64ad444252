import { Transform, type TransformCallback } from 'node:stream';
import type { ByteRange } from './store.js';

/**
 * Passes on only the bytes of `range` (inclusive positions) of a stream that starts at position 0,
 * for a source that sent everything when one range was asked for. Ends as soon as the range is out,
 * and destroys its source then, so the rest is never read.
 */
export function sliceRange(range: ByteRange): Transform {
  let position = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      const from = Math.max(0, range.start - position);
      const to = Math.min(chunk.length, range.end + 1 - position);
      position += chunk.length;
      if (to > from) this.push(from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to));
      if (position > range.end) {
        this.push(null);
        callback();
        return;
      }
      callback();
    },
  });
}
