import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_KEY, json, sha256, startStack, type Stack } from './helpers/stack.js';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({ docs: ['multi', 'utf8', 'json', 'raw', 'session', 'pkfield', 'auth'] });
});
afterAll(() => stack.close());

function form(entries: [string, string | Blob, string?][]): FormData {
  const data = new FormData();
  for (const [name, value, filename] of entries) {
    if (typeof value === 'string') data.append(name, value);
    else data.append(name, value, filename);
  }
  return data;
}

describe('POST multipart/form-data', () => {
  it('streams each file part into a managed attachment and reports size and sha256', async () => {
    const photo = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
    const note = Buffer.from('hello, cosmos');
    const response = await fetch(stack.route('multi'), {
      method: 'POST',
      headers: stack.headers('multi'),
      body: form([
        ['photo', new Blob([photo], { type: 'image/jpeg' }), 'photo.jpg'],
        ['note', new Blob([note], { type: 'text/plain' }), 'note.txt'],
      ]),
    });
    expect(response.status).toBe(201);
    const { attachments } = (await response.json()) as { attachments: Record<string, unknown>[] };
    expect(attachments).toHaveLength(2);
    expect(attachments[0]).toMatchObject({
      id: 'photo.jpg',
      contentType: 'image/jpeg',
      size: photo.length,
      sha256: sha256(photo),
    });
    expect(attachments[1]).toMatchObject({
      id: 'note.txt',
      contentType: 'text/plain',
      size: note.length,
      sha256: sha256(note),
    });
    for (const attachment of attachments) {
      expect(attachment).toHaveProperty('_rid');
      expect(attachment).toHaveProperty('_etag');
      expect(String(attachment.media)).toMatch(/^\/media\//);
    }
    expect(sha256(await stack.readMedia(String(attachments[0]!.media)))).toBe(sha256(photo));
    expect((await stack.readMedia(String(attachments[1]!.media))).toString()).toBe('hello, cosmos');
    // Two parts: RU charges add up, the last session token is passed back, no single etag.
    expect(response.headers.get('x-ms-request-charge')).toBe('2');
    expect(response.headers.get('x-ms-session-token')).toMatch(/^0:-1#\d+$/);
    expect(response.headers.get('x-ms-activity-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers.get('etag')).toBeNull();
  });

  it('decodes UTF-8 file names, plain or RFC 5987, and sends them percent-encoded as the Slug', async () => {
    const boundary = 'b0undary';
    const body = [
      `--${boundary}\r\nContent-Disposition: form-data; name="a"; filename="naïve résumé.txt"\r\nContent-Type: text/plain\r\n\r\nA\r\n`,
      `--${boundary}\r\nContent-Disposition: form-data; name="b"; filename*=UTF-8''%E7%85%A7%E7%89%87%20100%25.png\r\nContent-Type: image/png\r\n\r\nB\r\n`,
      `--${boundary}--\r\n`,
    ].join('');
    const response = await fetch(stack.route('utf8'), {
      method: 'POST',
      headers: { ...stack.headers('utf8'), 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: Buffer.from(body, 'utf8'),
    });
    expect(response.status).toBe(201);
    const { attachments } = (await response.json()) as { attachments: { id: string }[] };
    expect(attachments.map((a) => a.id)).toEqual(['naïve résumé.txt', '照片 100%.png']);
    const slugs = stack.requests
      .filter((r) => r.method === 'POST' && r.path.includes('/docs/utf8/attachments'))
      .map((r) => r.headers.slug);
    expect(slugs).toEqual(['na%C3%AFve r%C3%A9sum%C3%A9.txt', '%E7%85%A7%E7%89%87 100%25.png']);
    expect((await stack.listAttachments('utf8')).map((a) => a.id).sort()).toEqual([
      'naïve résumé.txt',
      '照片 100%.png',
    ]);
  });

  it('takes the partition key from a partitionKey field and creates metadata attachments from a metadata field', async () => {
    const response = await fetch(stack.route('pkfield'), {
      method: 'POST',
      headers: { 'x-functions-key': FUNCTION_KEY },
      body: form([
        ['partitionKey', 'pkfield'],
        [
          'metadata',
          JSON.stringify({
            id: 'cdn-copy',
            contentType: 'image/png',
            media: 'https://cdn.example/x.png',
            alt: 'x',
          }),
        ],
        ['file', new Blob(['abc'], { type: 'application/pdf' }), 'doc.pdf'],
        ['submit', 'Upload'],
      ]),
    });
    expect(response.status).toBe(201);
    const { attachments } = (await response.json()) as { attachments: Record<string, unknown>[] };
    expect(attachments[0]).toMatchObject({ id: 'cdn-copy', media: 'https://cdn.example/x.png', alt: 'x' });
    expect(attachments[0]).not.toHaveProperty('sha256');
    expect(attachments[1]).toMatchObject({ id: 'doc.pdf', contentType: 'application/pdf', size: 3 });
    const upstream = stack.requests.filter(
      (r) => r.method === 'POST' && r.path.includes('/docs/pkfield/attachments'),
    );
    expect(upstream.map((r) => r.headers['x-ms-documentdb-partitionkey'])).toEqual([
      '["pkfield"]',
      '["pkfield"]',
    ]);
  });

  it('accepts the partition key as a JSON array in the field, escaping non-ASCII for the header', async () => {
    const doc = 'ünïcode-doc';
    stack.emulator.store.createDocument('demo', 'items', { id: doc }, JSON.stringify([doc]));
    const response = await fetch(stack.route(doc), {
      method: 'POST',
      headers: { 'x-functions-key': FUNCTION_KEY },
      body: form([
        ['partitionKey', JSON.stringify([doc])],
        ['file', new Blob(['x']), 'x.bin'],
      ]),
    });
    expect(response.status).toBe(201);
    const upstream = stack.requests
      .filter((r) => r.method === 'POST' && r.path.includes('/attachments'))
      .at(-1)!;
    expect(upstream.headers['x-ms-documentdb-partitionkey']).toBe('["\\u00fcn\\u00efcode-doc"]');
  });

  it('forwards the caller session token upstream', async () => {
    const response = await fetch(stack.route('session'), {
      method: 'POST',
      headers: { ...stack.headers('session'), 'x-ms-session-token': '0:-1#42' },
      body: form([['f', new Blob(['1']), 's.txt']]),
    });
    expect(response.status).toBe(201);
    const upstream = stack.requests.filter((r) => r.path.includes('/docs/session/attachments'));
    // The create, and the write that marks it as this upload's.
    expect(upstream.map((r) => [r.method, r.headers['x-ms-session-token']])).toEqual([
      ['POST', '0:-1#42'],
      ['PUT', '0:-1#42'],
    ]);
  });
});

describe('POST application/json', () => {
  it('creates a metadata attachment and answers with the Cosmos resource, status and headers', async () => {
    const response = await fetch(stack.route('json'), {
      method: 'POST',
      headers: { ...stack.headers('json'), 'content-type': 'application/json' },
      body: JSON.stringify({
        id: 'elsewhere',
        contentType: 'video/mp4',
        media: 'https://media.example/v.mp4',
        tags: ['a'],
      }),
    });
    expect(response.status).toBe(201);
    const resource = await json(response);
    expect(resource).toMatchObject({
      id: 'elsewhere',
      contentType: 'video/mp4',
      media: 'https://media.example/v.mp4',
      tags: ['a'],
    });
    expect(response.headers.get('etag')).toBe(resource._etag);
    expect(response.headers.get('x-ms-request-charge')).toBe('1');
    expect(response.headers.get('x-ms-session-token')).toBeTruthy();
    expect(response.headers.get('x-ms-activity-id')).toBeTruthy();
  });

  it('forwards the body as validated: with a key given twice, the value that was checked', async () => {
    const response = await fetch(stack.route('json'), {
      method: 'POST',
      headers: { ...stack.headers('json'), 'content-type': 'application/json' },
      body: '{"id":"twice-keyed","contentType":"text/html","media":"https://x/y","contentType":"image/png"}',
    });
    expect(response.status).toBe(201);
    expect(await json(response)).toMatchObject({ contentType: 'image/png' });
  });

  it('passes a Cosmos error status through with its code, e.g. 409 for a taken id', async () => {
    const send = (media: string) =>
      fetch(stack.route('json'), {
        method: 'POST',
        headers: { ...stack.headers('json'), 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'twice', contentType: 'text/plain', media }),
      });
    const first = await send('https://x/y');
    expect(first.status).toBe(201);
    // Other content under the taken id: Cosmos DB's 409, as it gave it.
    const other = await send('https://x/other');
    expect(other.status).toBe(409);
    expect(await json(other)).toMatchObject({ code: 'Conflict' });
    // The same content again (a retry whose first answer was lost): the same attachment, 201.
    const again = await send('https://x/y');
    expect(again.status).toBe(201);
    expect((await json(again))._rid).toBe((await json(first))._rid);
  });
});

describe('POST raw media with a Slug (Cosmos REST passthrough)', () => {
  it('creates a managed attachment from the body, as Cosmos DB answers it', async () => {
    const bytes = Buffer.alloc(123_456, 3);
    const response = await fetch(stack.route('raw'), {
      method: 'POST',
      headers: { ...stack.headers('raw'), 'content-type': 'image/webp', slug: 'caf%C3%A9.webp' },
      body: bytes,
    });
    expect(response.status).toBe(201);
    const resource = await json(response);
    // The bridge records the size and SHA-256 of what it stored with its mark (downloads use them).
    expect(resource).toMatchObject({
      id: 'café.webp',
      contentType: 'image/webp',
      size: bytes.length,
      sha256: sha256(bytes),
    });
    expect(sha256(await stack.readMedia(String(resource.media)))).toBe(sha256(bytes));
  });

  it('treats a JSON body with a Slug as media, as Cosmos DB does', async () => {
    const response = await fetch(stack.route('raw'), {
      method: 'POST',
      headers: { ...stack.headers('raw'), 'content-type': 'application/json', slug: 'data.json' },
      body: '{"not":"metadata"}',
    });
    expect(response.status).toBe(201);
    const resource = await json(response);
    expect((await stack.readMedia(String(resource.media))).toString()).toBe('{"not":"metadata"}');
  });

  it('defaults the content type to application/octet-stream', async () => {
    const response = await fetch(stack.route('raw'), {
      method: 'POST',
      headers: { ...stack.headers('raw'), slug: 'blob.bin' },
      body: Buffer.from([1, 2, 3]),
    });
    expect(response.status).toBe(201);
    // fetch labels a Buffer body with no type; the bridge falls back like the SDK did.
    expect((await json(response)).contentType).toMatch(/^application\/octet-stream$/);
  });
});

describe('function keys (authLevel function)', () => {
  const body = () => form([['f', new Blob(['k']), `k-${Math.random()}.txt`]]);

  it('accepts the key in x-functions-key or ?code=', async () => {
    const viaQuery = await fetch(`${stack.route('auth')}?code=${FUNCTION_KEY}`, {
      method: 'POST',
      headers: { 'x-ms-documentdb-partitionkey': '["auth"]' },
      body: body(),
    });
    expect(viaQuery.status).toBe(201);
  });

  it('answers 401 without a key, with a wrong key, and when a wrong header shadows a right ?code=', async () => {
    const pk = { 'x-ms-documentdb-partitionkey': '["auth"]' };
    for (const [url, headers] of [
      [stack.route('auth'), pk],
      [stack.route('auth'), { ...pk, 'x-functions-key': 'wrong' }],
      [`${stack.route('auth')}?code=${FUNCTION_KEY}`, { ...pk, 'x-functions-key': 'wrong' }],
    ] as const) {
      const response = await fetch(url, { method: 'POST', headers, body: body() });
      // The Functions host refuses these before the bridge runs, as in Azure: 401 with no body.
      expect(response.status).toBe(401);
      expect(await response.text()).toBe('');
    }
    expect(await stack.listAttachments('auth')).toHaveLength(1);
  });

  it('keeps the function key out of the request log', () => {
    const requestLines = stack.logs.filter((line) => line.includes('"request"'));
    expect(requestLines.length).toBeGreaterThan(0);
    for (const line of stack.logs) expect(line).not.toContain(FUNCTION_KEY);
  });
});

describe('routing', () => {
  it('answers JSON 404 for an unknown path and 405 for another method, with no key needed', async () => {
    const unknown = await fetch(`${stack.host.url}/api/nothing`);
    expect(unknown.status).toBe(404);
    expect(await json(unknown)).toMatchObject({ code: 'NotFound' });
    expect(unknown.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const deeper = await fetch(`${stack.host.url}/api/dbs/demo/colls/items/docs/welcome/nothing`);
    expect(deeper.status).toBe(404);
    const put = await fetch(stack.route(), { method: 'PUT', body: 'x' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, POST');
    expect(await json(put)).toMatchObject({ code: 'MethodNotAllowed' });
  });
});
