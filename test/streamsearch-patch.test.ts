import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

// busboy's boundary search, as patched at install (patches/streamsearch+1.1.0.patch): its search
// without a lookbehind uses Buffer#indexOf. Checked here against an independent reference: the
// whole haystack split at each needle, left to right.
const require = createRequire(import.meta.url);
type Callback = (isMatch: boolean, data: Buffer | undefined, start: number, end: number) => void;
const StreamSearch = require('streamsearch') as new (
  needle: Buffer,
  cb: Callback,
) => {
  push(chunk: Buffer): number;
  destroy(): void;
};

/** What the search reports: the data between needles, and how many needles. */
function searched(needle: Buffer, chunks: Buffer[]): { segments: string[]; matches: number } {
  const segments: string[] = [];
  let current: Buffer[] = [];
  let matches = 0;
  const search = new StreamSearch(needle, (isMatch, data, start, end) => {
    if (data !== undefined && end > start) current.push(Buffer.from(data.subarray(start, end)));
    if (isMatch) {
      matches++;
      segments.push(Buffer.concat(current).toString('latin1'));
      current = [];
    }
  });
  for (const chunk of chunks) search.push(chunk);
  search.destroy();
  segments.push(Buffer.concat(current).toString('latin1'));
  return { segments, matches };
}

/** The reference: every needle, leftmost first, not overlapping, in the haystack as one buffer. */
function reference(needle: Buffer, haystack: Buffer): { segments: string[]; matches: number } {
  const segments: string[] = [];
  let from = 0;
  for (let at = haystack.indexOf(needle, from); at !== -1; at = haystack.indexOf(needle, from)) {
    segments.push(haystack.subarray(from, at).toString('latin1'));
    from = at + needle.length;
  }
  segments.push(haystack.subarray(from).toString('latin1'));
  return { segments, matches: segments.length - 1 };
}

/** Cuts a buffer at the given offsets (any, sorted here), empty pieces included. */
function cut(haystack: Buffer, offsets: number[]): Buffer[] {
  const points = [...offsets.map((o) => o % (haystack.length + 1))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let last = 0;
  for (const point of points) {
    pieces.push(haystack.subarray(last, point));
    last = point;
  }
  pieces.push(haystack.subarray(last));
  return pieces;
}

describe('busboy boundary search (streamsearch, patched to Buffer#indexOf)', () => {
  it('carries the patch', () => {
    const source = readFileSync(require.resolve('streamsearch/lib/sbmh.js'), 'utf8');
    expect(source).toContain('PATCH (cosmos-attachment-bridge)');
  });

  it('finds every delimiter, and hands on every other byte, however the stream is cut', () => {
    // A small alphabet, so needles, near-misses and needles split across chunks are all common.
    const bytes = (max: number) =>
      fc
        .array(fc.constantFrom(0x0d, 0x0a, 0x2d, 0x61, 0x62), { maxLength: max })
        .map((list) => Buffer.from(list));
    // Needles as busboy makes them: CRLF, "--", the boundary, which has no CR or LF (RFC 2046). With
    // a needle that repeats its own start (e.g. CR CR LF), streamsearch 1.1.0 itself drops bytes
    // when a match starts inside what it held back from the previous chunk; no boundary can.
    const delimiter = fc
      .array(fc.constantFrom(0x2d, 0x61, 0x62), { minLength: 1, maxLength: 6 })
      .map((boundary) => Buffer.from([0x0d, 0x0a, 0x2d, 0x2d, ...boundary]));
    fc.assert(
      fc.property(
        delimiter,
        fc.array(fc.oneof(bytes(12), fc.constant(null)), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (needle, pieces, offsets) => {
          // The haystack: random bytes with whole needles mixed in.
          const haystack = Buffer.concat(pieces.map((piece) => piece ?? needle));
          expect(searched(needle, cut(haystack, offsets))).toEqual(reference(needle, haystack));
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('does the same with a real boundary and large random chunks', () => {
    const needle = Buffer.from('\r\n------formBoundary7MA4YWxkTrZu0gW');
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.uint8Array({ minLength: 0, maxLength: 4096 }), fc.constant(null)), {
          maxLength: 10,
        }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (pieces, offsets) => {
          const haystack = Buffer.concat(pieces.map((piece) => (piece ? Buffer.from(piece) : needle)));
          expect(searched(needle, cut(haystack, offsets))).toEqual(reference(needle, haystack));
        },
      ),
      { numRuns: 500 },
    );
  });
});
