import fc from 'fast-check';

/** Limits the fuzzed bridge runs with, so the generator knows what crosses them. */
export const FUZZ_LIMITS = { maxPartBytes: 4096, maxParts: 8, maxFieldBytes: 2048 } as const;

export interface HostileRequest {
  contentType: string;
  body: Buffer;
  /** What makes this request one the bridge must refuse, for the failure report. */
  flaw: string;
}

const BOUNDARY_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'()+_,-./:=?";
const boundaryArb = fc
  .array(fc.constantFrom(...BOUNDARY_CHARS), { minLength: 1, maxLength: 40 })
  .map((chars) => `${chars.join('')}z`);

/** File names Cosmos DB accepts as ids (busboy keeps only what follows the last / or \). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what is replaced
const UNSAFE_IN_NAMES = /[/\\?#"\u0000-\u001f\u007f-\u009f]/g;
const goodName = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 20 })
  .map((s) => s.replace(UNSAFE_IN_NAMES, 'x').trim())
  .filter((s) => s !== '' && s !== '.' && s !== '..')
  .map((s) => `${s}.bin`);

/** Names the bridge must refuse: forbidden characters, too long, a trailing space. */
const badName = fc.oneof(
  fc.constant('what?.txt'),
  fc.constant('hash#tag.txt'),
  fc.constant('tab\there.txt'),
  fc.constant('trailing.txt '),
  fc.constant(`${'n'.repeat(300)}.txt`),
  fc.constant('ctrl\u0001.txt'),
);

const contentArb = (maxBytes: number) =>
  fc.uint8Array({ minLength: 0, maxLength: maxBytes }).map((a) => Buffer.from(a));
const typeArb = fc.constantFrom('image/png', 'application/pdf', 'application/octet-stream', 'text/plain');

interface Part {
  headers: string;
  content: Buffer;
}

const filePart = (name: string, type: string, content: Buffer): Part => ({
  headers: `Content-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: ${type}`,
  content,
});
const fieldPart = (name: string, value: string): Part => ({
  headers: `Content-Disposition: form-data; name="${name}"`,
  content: Buffer.from(value),
});

/** Parts a valid form may hold: files, metadata, an ignored field. */
const validPart = fc.oneof(
  fc.tuple(goodName, typeArb, contentArb(1500)).map(([name, type, content]) => filePart(name, type, content)),
  goodName.map((id) =>
    fieldPart(
      'metadata',
      JSON.stringify({ id: `m-${id}`, contentType: 'image/png', media: 'https://cdn.example/x' }),
    ),
  ),
  fc.string({ maxLength: 30 }).map((value) => fieldPart('comment', value)),
);

function encode(boundary: string, parts: Part[], closing = true, preamble = Buffer.alloc(0)): Buffer {
  // A preamble ends with CRLF, or it would swallow the first delimiter (and with it the first part).
  const chunks: Buffer[] = preamble.length > 0 ? [preamble, Buffer.from('\r\n')] : [];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n${part.headers}\r\n\r\n`), part.content, Buffer.from('\r\n'));
  }
  if (closing) chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

const form = (boundary: string) => `multipart/form-data; boundary=${boundary}`;

/**
 * A multipart request with at least one flaw that must get it refused. Valid parts come first, so
 * the bridge has usually created attachments by the time it meets the flaw and must undo them.
 */
export const hostileMultipart: fc.Arbitrary<HostileRequest> = fc
  .tuple(boundaryArb, fc.array(validPart, { maxLength: 3 }), fc.uint8Array({ maxLength: 40 }))
  .chain(([boundary, valid, preambleBytes]) => {
    const preamble = Buffer.from(preambleBytes.filter((b) => b !== 0x2d)); // no "-" that could start a boundary
    const flaws: fc.Arbitrary<HostileRequest>[] = [
      // Cut off before the closing delimiter.
      fc.nat().map((n) => {
        const full = encode(boundary, [...valid, fieldPart('x', 'y')], true, preamble);
        const cut = full.subarray(0, n % (full.length - boundary.length - 6));
        return { contentType: form(boundary), body: cut, flaw: 'truncated' };
      }),
      badName.map((name) => ({
        contentType: form(boundary),
        body: encode(boundary, [...valid, filePart(name, 'image/png', Buffer.from('x'))], true, preamble),
        flaw: `bad file name ${JSON.stringify(name)}`,
      })),
      fc.integer({ min: FUZZ_LIMITS.maxPartBytes + 1, max: FUZZ_LIMITS.maxPartBytes * 2 }).map((size) => ({
        contentType: form(boundary),
        body: encode(
          boundary,
          [...valid, filePart('big.bin', 'image/png', Buffer.alloc(size, 1))],
          true,
          preamble,
        ),
        flaw: 'part too large',
      })),
      fc
        .array(validPart, { minLength: FUZZ_LIMITS.maxParts + 1, maxLength: FUZZ_LIMITS.maxParts + 3 })
        .map((parts) => ({
          contentType: form(boundary),
          body: encode(boundary, parts, true, preamble),
          flaw: 'too many parts',
        })),
      fc.string({ maxLength: 50 }).map((junk) => ({
        contentType: form(boundary),
        body: encode(boundary, [...valid, fieldPart('metadata', `{"id": ${junk}`)], true, preamble),
        flaw: 'metadata is not JSON',
      })),
      fc.constant({
        contentType: form(boundary),
        body: encode(boundary, [
          filePart('first.bin', 'image/png', Buffer.from('1')),
          fieldPart('partitionKey', 'late'),
        ]),
        flaw: 'partitionKey after a file',
      }),
      fc
        .constantFrom(
          'multipart/form-data',
          'multipart/form-data; boundary=',
          'multipart/form-data; charset=utf-8',
        )
        .map((contentType) => ({
          contentType,
          body: encode(boundary, valid, true, preamble),
          flaw: 'no boundary',
        })),
      fc.constant({
        contentType: form(`${boundary}-other`),
        body: encode(boundary, valid, true, preamble),
        flaw: 'boundary differs from the body',
      }),
      fc.constant({
        contentType: form(boundary),
        body: encode(boundary, [
          ...valid,
          {
            headers:
              'Content-Disposition: form-data; name="file"; filename=""\r\nContent-Type: application/octet-stream',
            content: Buffer.from('x'),
          },
        ]),
        flaw: 'file part without a name',
      }),
      fc.constant({
        contentType: form(boundary),
        body: encode(boundary, [
          ...valid,
          {
            headers: `Content-Disposition: form-data; name="f"; filename="h.bin"\r\nX-Pad: ${'p'.repeat(17 * 1024)}`,
            content: Buffer.from('x'),
          },
        ]),
        flaw: 'part headers over 16 KiB',
      }),
      fc.constant({
        contentType: form(boundary),
        body: encode(boundary, [fieldPart('comment', 'only ignored fields')], true, preamble),
        flaw: 'nothing to attach',
      }),
      fc
        .string({
          minLength: FUZZ_LIMITS.maxFieldBytes + 1,
          maxLength: FUZZ_LIMITS.maxFieldBytes + 50,
          unit: 'binary-ascii',
        })
        .map((value) => ({
          contentType: form(boundary),
          body: encode(boundary, [...valid, fieldPart('metadata', value)], true, preamble),
          flaw: 'field too large',
        })),
      fc.uint8Array({ minLength: 1, maxLength: 200 }).map((noise) => ({
        contentType: form(boundary),
        // Random bytes where a part's headers belong, and no closing delimiter.
        body: Buffer.concat([
          encode(boundary, valid, false, preamble),
          Buffer.from(`--${boundary}\r\n`),
          Buffer.from(noise),
        ]),
        flaw: 'garbage headers, unterminated',
      })),
    ];
    return fc.oneof(...flaws);
  });
