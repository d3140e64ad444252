import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DelimiterCounter } from '../src/multipart/delimiters.js';

/** The reference: every CRLF--boundary in the whole body at once (with busboy's leading CRLF). */
function countWhole(body: Buffer, boundary: string): number {
  const whole = Buffer.concat([Buffer.from('\r\n'), body]);
  const pattern = Buffer.from(`\r\n--${boundary}`);
  let count = 0;
  for (let at = whole.indexOf(pattern); at !== -1; at = whole.indexOf(pattern, at + 1)) count += 1;
  return count;
}

describe('delimiter counting', () => {
  it('matches counting over the whole body, however the body is split into chunks', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.stringMatching(/^[a-z0-9'()+_,-./:=?]{1,20}$/),
        fc.array(fc.oneof(fc.constantFrom('\r\n--', '--', '\r\n', '\r'), fc.string({ maxLength: 8 })), {
          maxLength: 40,
        }),
        fc.array(fc.nat({ max: 30 }), { maxLength: 40 }),
        async (boundary, pieces, cuts) => {
          const body = Buffer.from(pieces.map((p) => (p === '\r\n--' ? `\r\n--${boundary}` : p)).join(''));
          const chunks: Buffer[] = [];
          let offset = 0;
          for (const cut of cuts) {
            chunks.push(body.subarray(offset, Math.min(body.length, offset + cut + 1)));
            offset = Math.min(body.length, offset + cut + 1);
          }
          chunks.push(body.subarray(offset));
          const counter = new DelimiterCounter(boundary);
          await pipeline(
            Readable.from(chunks.filter((c) => c.length > 0)),
            counter,
            async function* (source) {
              for await (const _ of source) yield* [];
            },
          );
          expect(counter.count).toBe(countWhole(body, boundary));
        },
      ),
      { numRuns: 500 },
    );
  });
});
