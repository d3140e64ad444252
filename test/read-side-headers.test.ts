import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { safeName, uniqueAttachmentId } from '../src/attachments/ids.js';
import { idProblem } from '../src/cosmos/ids.js';
import { ifMatchHolds, notModified, rangeAllowed } from '../src/http/conditional.js';
import { contentDisposition, mayShowInline } from '../src/http/content-disposition.js';
import { resolveRange } from '../src/http/ranges.js';

/** jshttp's content-disposition (Express's), as an independent reading of what the bridge writes. */
const reference = createRequire(import.meta.url)('content-disposition') as {
  parse(header: string): { type: string; parameters: Record<string, string> };
};

describe('Range (RFC 9110 14.1.2)', () => {
  it.each([
    [null, 100, { kind: 'whole' }],
    ['bytes=0-9', 100, { kind: 'range', range: { start: 0, end: 9 } }],
    ['bytes=90-', 100, { kind: 'range', range: { start: 90, end: 99 } }],
    ['bytes=-10', 100, { kind: 'range', range: { start: 90, end: 99 } }],
    ['bytes=-1000', 100, { kind: 'range', range: { start: 0, end: 99 } }],
    ['bytes=50-1000', 100, { kind: 'range', range: { start: 50, end: 99 } }],
    ['BYTES = 1-2', 100, { kind: 'range', range: { start: 1, end: 2 } }],
    ['bytes=100-', 100, { kind: 'unsatisfiable' }],
    ['bytes=-0', 100, { kind: 'unsatisfiable' }],
    ['bytes=0-', 0, { kind: 'unsatisfiable' }],
    ['bytes=0-1,4-5', 100, { kind: 'whole' }],
    ['bytes=9-1', 100, { kind: 'whole' }],
    ['bytes=-', 100, { kind: 'whole' }],
    ['items=0-1', 100, { kind: 'whole' }],
    ['bytes=1e3-', 100, { kind: 'whole' }],
    ['bytes=99999999999999999999-', 100, { kind: 'whole' }],
  ])('%s of %i bytes', (header, size, expected) => {
    expect(resolveRange(header, size)).toEqual(expected);
  });

  it('always resolves to a range inside the representation, or refuses', () => {
    fc.assert(
      fc.property(fc.string(), fc.nat(10_000), (header, size) => {
        const asked = resolveRange(`bytes=${header}`, size);
        if (asked.kind === 'range') {
          expect(asked.range.start).toBeGreaterThanOrEqual(0);
          expect(asked.range.end).toBeGreaterThanOrEqual(asked.range.start);
          expect(asked.range.end).toBeLessThan(size);
        }
      }),
    );
  });
});

describe('conditional requests (RFC 9110 13)', () => {
  const strong = { etag: '"abc"', lastModified: 1_700_000_000 };
  const date = (seconds: number) => new Date(seconds * 1000).toUTCString();
  const headers = (entries: Record<string, string>) => new Headers(entries);

  it('If-None-Match compares weakly and wins over If-Modified-Since', () => {
    expect(notModified(headers({ 'if-none-match': '"abc"' }), strong)).toBe(true);
    expect(notModified(headers({ 'if-none-match': 'W/"abc"' }), strong)).toBe(true);
    expect(notModified(headers({ 'if-none-match': '"x", "abc"' }), strong)).toBe(true);
    expect(notModified(headers({ 'if-none-match': '*' }), strong)).toBe(true);
    expect(
      notModified(
        headers({ 'if-none-match': '"x"', 'if-modified-since': date(strong.lastModified) }),
        strong,
      ),
    ).toBe(false);
  });

  it('If-Modified-Since: not modified at or after the last change; an invalid date is ignored', () => {
    expect(notModified(headers({ 'if-modified-since': date(strong.lastModified) }), strong)).toBe(true);
    expect(notModified(headers({ 'if-modified-since': date(strong.lastModified + 60) }), strong)).toBe(true);
    expect(notModified(headers({ 'if-modified-since': date(strong.lastModified - 1) }), strong)).toBe(false);
    expect(notModified(headers({ 'if-modified-since': 'yesterday' }), strong)).toBe(false);
  });

  it('If-Range holds only for the same strong tag or the exact date', () => {
    expect(rangeAllowed(headers({}), strong)).toBe(true);
    expect(rangeAllowed(headers({ 'if-range': '"abc"' }), strong)).toBe(true);
    expect(rangeAllowed(headers({ 'if-range': 'W/"abc"' }), strong)).toBe(false);
    expect(rangeAllowed(headers({ 'if-range': '"abc"' }), { etag: 'W/"abc"' })).toBe(false);
    expect(rangeAllowed(headers({ 'if-range': '"other"' }), strong)).toBe(false);
    expect(rangeAllowed(headers({ 'if-range': date(strong.lastModified) }), strong)).toBe(true);
    expect(rangeAllowed(headers({ 'if-range': date(strong.lastModified + 1) }), strong)).toBe(false);
  });

  it('If-Match compares strongly', () => {
    expect(ifMatchHolds(null, '"abc"')).toBe(true);
    expect(ifMatchHolds('*', '"abc"')).toBe(true);
    expect(ifMatchHolds('"abc"', '"abc"')).toBe(true);
    expect(ifMatchHolds('"x", "abc"', '"abc"')).toBe(true);
    expect(ifMatchHolds('W/"abc"', '"abc"')).toBe(false);
    expect(ifMatchHolds('"x"', '"abc"')).toBe(false);
  });
});

describe('Content-Disposition (RFC 6266, RFC 8187)', () => {
  it('gives back any file name exactly, as an independent parser reads it', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 80 }),
        fc.boolean(),
        (name, inline) => {
          const type = inline ? 'inline' : 'attachment';
          const header = contentDisposition(type, name);
          expect(header).toMatch(/^[\x20-\x7e]+$/);
          expect(reference.parse(header)).toEqual({ type, parameters: { filename: name } });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('shows inline only types that run nothing', () => {
    for (const type of [
      'image/png',
      'image/jpeg',
      'video/mp4',
      'audio/mpeg',
      'text/plain',
      'application/pdf',
    ])
      expect(mayShowInline(type)).toBe(true);
    for (const type of [
      'text/html',
      'image/svg+xml',
      'application/xhtml+xml',
      'text/javascript',
      'application/javascript',
      'application/xml',
      'text/xml',
      'application/octet-stream',
      'multipart/x-mixed-replace',
    ])
      expect(mayShowInline(type)).toBe(false);
  });
});

describe('unique attachment ids', () => {
  it('are valid ids of at most 255 characters, different every time, ending with the safe name', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (name) => {
        const a = uniqueAttachmentId(name);
        const b = uniqueAttachmentId(name);
        expect(idProblem(a)).toBeUndefined();
        expect([...a].length).toBeLessThanOrEqual(255);
        expect(a).not.toBe(b);
        const tail = safeName(name);
        if ([...tail].length <= 246) expect(a.slice(9)).toBe(tail);
      }),
      { numRuns: 1000 },
    );
  });

  it('keep a short extension when the name must be shortened', () => {
    const id = uniqueAttachmentId(`${'x'.repeat(300)}.jpeg`);
    expect(id.length).toBe(255);
    expect(id.endsWith('.jpeg')).toBe(true);
  });

  it('make path separators, query and fragment marks, percent signs and dot names safe', () => {
    expect(safeName('C:\\Users\\me\\Pictures\\image.jpg')).toBe('image.jpg');
    expect(safeName('../../etc/passwd')).toBe('passwd');
    expect(safeName('what?#%.png')).toBe('what___.png');
    expect(safeName('..')).toBe('file');
    expect(safeName('  spaced name.png  ')).toBe('spaced name.png');
  });
});
