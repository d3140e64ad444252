import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, startStack, type Stack } from './helpers/stack.js';

/** Issue "Never delete what was confirmed", findings 5 to 7: limits as they are crossed, nesting, content types. */
const MiB = 1024 * 1024;
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    env: { MAX_PART_BYTES: String(MiB), ALLOWED_CONTENT_TYPES: 'image/*' },
    docs: ['l-field', 'l-type', 'l-json'],
  });
});
afterAll(() => stack.close());

/**
 * Sends a multipart body whose one part is `header` followed by `size` bytes, 64 KiB at a time, and
 * reports how much of the body had been handed to the connection when the answer's status arrived.
 */
async function streamPart(doc: string, header: string, size: number) {
  const boundary = 'limit-boundary';
  let pulled = 0;
  const chunk = Buffer.alloc(64 * 1024, 'a');
  function* body() {
    const head = Buffer.from(`--${boundary}\r\n${header}\r\n\r\n`);
    pulled += head.length;
    yield head;
    for (let sent = 0; sent < size; sent += chunk.length) {
      pulled += chunk.length;
      yield chunk;
    }
    yield Buffer.from(`\r\n--${boundary}--\r\n`);
  }
  const response = await request(stack.route(doc), {
    method: 'POST',
    headers: { ...stack.headers(doc), 'content-type': `multipart/form-data; boundary=${boundary}` },
    body: Readable.from(body()),
  });
  const sentWhenAnswered = pulled;
  return {
    status: response.statusCode,
    body: (await response.body.json()) as { code: string; message: string },
    sentWhenAnswered,
  };
}

describe('limits are answered as they are crossed (finding 5)', () => {
  it('a 32 MiB text field is refused at MAX_FIELD_BYTES, not read to its end', async () => {
    const { status, body, sentWhenAnswered } = await streamPart(
      'l-field',
      'Content-Disposition: form-data; name="notes"',
      32 * MiB,
    );
    expect(status).toBe(413);
    expect(body).toMatchObject({ code: 'PayloadTooLarge' });
    expect(body.message).toMatch(/"notes" is larger than 262144 bytes/);
    // 256 KiB of field and what the sockets on the way buffer (a few MiB a hop on loopback), far from 32 MiB.
    expect(sentWhenAnswered).toBeLessThan(12 * MiB);
    expect(await stack.listAttachments('l-field')).toEqual([]);
  });

  it('a part typed as a file but without a file name is refused when its headers are read', async () => {
    const { status, body, sentWhenAnswered } = await streamPart(
      'l-field',
      'Content-Disposition: form-data; name="photo"\r\nContent-Type: image/png',
      32 * MiB,
    );
    expect(status).toBe(400);
    expect(body).toMatchObject({ code: 'MissingFilename' });
    expect(sentWhenAnswered).toBeLessThan(12 * MiB);
  });

  it('a file is refused at MAX_PART_BYTES as before', async () => {
    const { status, body, sentWhenAnswered } = await streamPart(
      'l-field',
      'Content-Disposition: form-data; name="f"; filename="big.png"\r\nContent-Type: image/png',
      32 * MiB,
    );
    expect(status).toBe(413);
    expect(body.message).toMatch(/MAX_PART_BYTES/);
    expect(sentWhenAnswered).toBeLessThan(12 * MiB);
  });
});

describe('deeply nested JSON (finding 6)', () => {
  const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
  const body = (extra: string) =>
    `{"id":"deep","contentType":"image/png","media":"https://x/deep","extra":${extra}}`;

  it.each([5_000, 33])('answers 400 for %i levels on the JSON route, never 500', async (depth) => {
    const response = await fetch(stack.route('l-json'), {
      method: 'POST',
      headers: { ...stack.headers('l-json'), 'content-type': 'application/json' },
      body: body(nested(depth)),
    });
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ code: 'InvalidJson' });
  });

  it('answers 400 in a metadata field too, and takes 32 levels', async () => {
    const deep = new FormData();
    deep.append('metadata', body(nested(5_000)));
    const refused = await fetch(stack.route('l-json'), {
      method: 'POST',
      headers: stack.headers('l-json'),
      body: deep,
    });
    expect(refused.status).toBe(400);
    expect(await json(refused)).toMatchObject({ code: 'InvalidJson' });
    const fine = new FormData();
    fine.append('metadata', body(nested(31))); // 31 inside the body object: 32 levels
    const accepted = await fetch(stack.route('l-json'), {
      method: 'POST',
      headers: stack.headers('l-json'),
      body: fine,
    });
    expect(accepted.status).toBe(201);
  });
});

describe('content types are one valid media type before they meet ALLOWED_CONTENT_TYPES (finding 7)', () => {
  const metadata = (contentType: string, id: string) =>
    fetch(stack.route('l-type'), {
      method: 'POST',
      headers: { ...stack.headers('l-type'), 'content-type': 'application/json' },
      body: JSON.stringify({ id, contentType, media: `https://cdn.example/${id}` }),
    });

  it.each(['image/png, text/html', 'image/../../text/html', 'image/png;', 'image/', 'image'])(
    'refuses the metadata content type %j with 400',
    async (contentType) => {
      const response = await metadata(contentType, 'sneaky');
      expect(response.status).toBe(400);
      expect(await json(response)).toMatchObject({ code: 'InvalidContentType' });
    },
  );

  it('refuses a raw upload whose Content-Type is a list', async () => {
    const response = await fetch(stack.route('l-type'), {
      method: 'POST',
      headers: { ...stack.headers('l-type'), 'content-type': 'image/png, text/html', slug: 'raw.png' },
      body: 'x',
    });
    expect(response.status).toBe(400);
    expect(await json(response)).toMatchObject({ code: 'InvalidContentType' });
  });

  it('still takes image/png with parameters, and refuses text/html with 415', async () => {
    expect((await metadata('IMAGE/PNG; charset=binary', 'fine')).status).toBe(201);
    const refused = await metadata('text/html', 'page');
    expect(refused.status).toBe(415);
    expect(await stack.listAttachments('l-type')).toHaveLength(1);
  });
});
