import busboy from 'busboy';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { attachProbe, type PartKind } from '../src/multipart/busboy-probe.js';

/**
 * The probe watches busboy 1.6's own scan (its boundary search and header parser, which are internal):
 * this checks it against an independent reading of the same bodies, and fails loudly if busboy's
 * internals ever change.
 */
const BOUNDARY = 'probe-boundary';

interface PartSpec {
  headers: string;
  content: string;
}

const specs: fc.Arbitrary<PartSpec> = fc.oneof(
  fc.record({
    headers: fc.constantFrom(
      'Content-Disposition: form-data; name="f"; filename="a.bin"\r\nContent-Type: application/octet-stream',
      'Content-Disposition: form-data; name="t"',
      'Content-Disposition: form-data; name="p"\r\nContent-Type: image/png',
      'Content-Disposition: attachment; name="x"',
      'Content-Type: text/plain',
      `Content-Disposition: form-data; name="u"; filename*=x-unknown''a.txt`,
    ),
    content: fc.string({ maxLength: 3000 }).filter((s) => !s.includes(`--${BOUNDARY}`)),
  }),
);

/** What busboy will make of each part, read from the headers the test wrote (the independent reference). */
function expectedKind(headers: string): PartKind['kind'] {
  if (!/^Content-Disposition: form-data/m.test(headers) || /filename\*=x-unknown/.test(headers))
    return 'skipped';
  return /filename=|application\/octet-stream/.test(headers) ? 'file' : 'field';
}

function feed(body: Buffer, cuts: number[]) {
  const parser = busboy({ headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` } });
  const kinds: PartKind['kind'][] = [];
  let bytes = 0;
  let boundaries = 0;
  attachProbe(parser, {
    onPart: (part) => kinds.push(part.kind),
    onBytes: (count) => (bytes += count),
    onBoundary: () => (boundaries += 1),
  });
  parser.on('file', (_name, stream) => stream.resume());
  parser.on('field', () => {});
  parser.on('error', () => {});
  let at = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < body.length).sort((a, b) => a - b), body.length]) {
    parser.write(body.subarray(at, cut));
    at = cut;
  }
  parser.end();
  return { kinds, bytes, boundaries };
}

describe('the busboy probe', () => {
  it('sees every part busboy reads, with its kind, every delimiter and every byte, however the body is cut', () => {
    fc.assert(
      fc.property(
        fc.array(specs, { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(20_000), { maxLength: 12 }),
        (parts, cuts) => {
          const body = Buffer.from(
            parts.map((p) => `--${BOUNDARY}\r\n${p.headers}\r\n\r\n${p.content}\r\n`).join('') +
              `--${BOUNDARY}--\r\n`,
          );
          const seen = feed(body, cuts);
          expect(seen.kinds).toEqual(parts.map((p) => expectedKind(p.headers)));
          expect(seen.boundaries).toBe(parts.length + 1);
          // Everything but the delimiters (busboy starts with a CRLF of its own before the first) and the
          // CRLF after the closing `--`, which busboy no longer scans.
          const delimiter = `\r\n--${BOUNDARY}`.length;
          expect(seen.bytes).toBe(2 + body.length - (parts.length + 1) * delimiter - 2);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses to attach to anything but the busboy it was written for', () => {
    expect(() => attachProbe({} as busboy.Busboy, { onPart() {}, onBytes() {}, onBoundary() {} })).toThrow(
      /busboy internals are not as expected/,
    );
  });
});
