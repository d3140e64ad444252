import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readMultipart } from '../src/multipart/parts.js';

// A file part's `maxBytes`: what the request's declared length leaves room for, from where the part
// starts. Replays keep only parts that can fit, so it must never be below the part's real size, and
// for the part that ends a form it must be its size plus no more than its own framing.

const LIMITS = { maxPartBytes: 1 << 24, maxParts: 10, maxFiles: 10, maxFields: 10, maxFieldBytes: 1024 };
const BOUNDARY = 'bound-AaB03x';

function form(sizes: number[], preamble: string): Buffer {
  const parts = sizes.map((size, i) =>
    Buffer.concat([
      Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="f${i}"; filename="f${i}.bin"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n',
      ),
      Buffer.alloc(size, 0x61 + i),
      Buffer.from('\r\n'),
    ]),
  );
  return Buffer.concat([Buffer.from(preamble), ...parts, Buffer.from(`--${BOUNDARY}--\r\n`)]);
}

function cut(body: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < body.length; at += size) chunks.push(body.subarray(at, at + size));
  return chunks;
}

async function partsOf(body: Buffer, chunkSize: number, declared: number | undefined) {
  const reader = readMultipart(
    Readable.from(cut(body, chunkSize)),
    `multipart/form-data; boundary=${BOUNDARY}`,
    LIMITS,
    (err) => err,
    declared,
  );
  const seen: { size: number; maxBytes: number | undefined }[] = [];
  for await (const part of reader) {
    if (part.type !== 'file') continue;
    let size = 0;
    for await (const chunk of part.stream) size += (chunk as Buffer).length;
    seen.push({ size, maxBytes: part.maxBytes });
  }
  await reader.close();
  return seen;
}

describe('the most bytes a file part can have', () => {
  it('is never less than the part, and exceeds the last part by its framing only', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat({ max: 200_000 }), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 100_000 }),
        fc.constantFrom('', 'a preamble\r\n'),
        async (sizes, chunkSize, preamble) => {
          const body = form(sizes, preamble);
          const seen = await partsOf(body, chunkSize, body.length);
          expect(seen.map((part) => part.size)).toEqual(sizes);
          for (const part of seen) expect(part.maxBytes!).toBeGreaterThanOrEqual(part.size);
          // The last part: at most one chunk of what came before it, its headers and delimiters more.
          const last = seen.at(-1)!;
          expect(last.maxBytes! - last.size).toBeLessThanOrEqual(chunkSize + 200);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('is unknown when the request declares no length', async () => {
    const body = form([1000], '');
    expect(await partsOf(body, 64 * 1024, undefined)).toEqual([{ size: 1000, maxBytes: undefined }]);
  });
});
