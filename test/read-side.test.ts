import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onTheWire, rawRequest } from './helpers/http.js';
import { FUNCTION_KEY, json, sha256, startStack, type Stack } from './helpers/stack.js';

/**
 * The read side over real sockets, managed media (the emulator, which by default ignores Range on
 * media reads as the service is assumed to): list, read, download, replace, delete, upsert and
 * unique ids. Blob mode: read-side-blob.test.ts.
 */
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    docs: [
      'r-list',
      'r-read',
      'r-media',
      'r-html',
      'r-ids',
      'r-upsert',
      'r-meta',
      'r-put',
      'r-del',
      'r-name',
    ],
  });
});
afterAll(() => stack.close());

type Resource = Record<string, unknown> & { id: string; _etag: string; media: string };

async function upload(
  doc: string,
  name: string,
  bytes: Buffer,
  type = 'image/png',
  headers: Record<string, string> = {},
) {
  const form = new FormData();
  form.append('file', new Blob([bytes], { type }), name);
  const response = await fetch(stack.route(doc), {
    method: 'POST',
    headers: { ...stack.headers(doc), ...headers },
    body: form,
  });
  // An error answer has no attachments: `attachment` is then a stand-in no test reads.
  const body = (await response.json()) as { attachments?: Resource[] };
  const attachment = body.attachments?.[0] ?? ({} as Resource);
  return { status: response.status, attachment, body };
}

const one = (doc: string, id: string) => `${stack.route(doc)}/${encodeURIComponent(id)}`;
const media = (doc: string, id: string) => `${one(doc, id)}/media`;

describe('GET .../attachments: the list, paged as Cosmos DB pages it', () => {
  it('pages with maxItemCount and an opaque continuation passed through, by query or by header', async () => {
    for (let i = 0; i < 5; i++) await upload('r-list', `p${i}.png`, Buffer.from(`p${i}`));
    const seen: string[] = [];
    let continuation: string | null = null;
    let pages = 0;
    do {
      const url = new URL(stack.route('r-list'));
      url.searchParams.set('maxItemCount', '2');
      if (continuation) url.searchParams.set('continuation', continuation);
      const response = await fetch(url, { headers: stack.headers('r-list') });
      expect(response.status).toBe(200);
      expect(response.headers.get('cache-control')).toBe('private, no-cache');
      const page = (await response.json()) as { Attachments: Resource[]; _count: number };
      expect(page.Attachments.length).toBeLessThanOrEqual(2);
      expect(Number(response.headers.get('x-ms-item-count'))).toBe(page.Attachments.length);
      seen.push(...page.Attachments.map((a) => a.id));
      continuation = response.headers.get('x-ms-continuation');
      pages += 1;
    } while (continuation !== null && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(['p0.png', 'p1.png', 'p2.png', 'p3.png', 'p4.png']);

    // Cosmos DB's own headers work the same, for clients that spoke to it directly.
    const first = await fetch(stack.route('r-list'), {
      headers: { ...stack.headers('r-list'), 'x-ms-max-item-count': '4' },
    });
    const token = first.headers.get('x-ms-continuation')!;
    const rest = await fetch(stack.route('r-list'), {
      headers: { ...stack.headers('r-list'), 'x-ms-max-item-count': '4', 'x-ms-continuation': token },
    });
    expect(((await rest.json()) as { Attachments: Resource[] }).Attachments.map((a) => a.id)).toEqual([
      'p4.png',
    ]);
  });

  it('refuses a page size out of bounds and a token Cosmos DB never gave', async () => {
    for (const size of ['0', '1001', 'ten']) {
      const response = await fetch(`${stack.route('r-list')}?maxItemCount=${size}`, {
        headers: stack.headers('r-list'),
      });
      expect(response.status).toBe(400);
    }
    const bogus = await fetch(`${stack.route('r-list')}?continuation=not-a-token`, {
      headers: stack.headers('r-list'),
    });
    expect(bogus.status).toBe(400);
    expect(await json(bogus)).toHaveProperty('code');
  });

  it('takes the partition key from ?partitionKey= (a link cannot carry headers)', async () => {
    const response = await fetch(`${stack.route('r-list')}?partitionKey=r-list&maxItemCount=1`, {
      headers: { 'x-functions-key': FUNCTION_KEY },
    });
    expect(response.status).toBe(200);
  });
});

describe('GET and HEAD .../attachments/{id}', () => {
  it('answers the resource with its etag and Last-Modified, 304 when the caller has it, and HEAD with no body', async () => {
    const { attachment } = await upload('r-read', 'doc.png', Buffer.from('doc'));
    const response = await fetch(one('r-read', 'doc.png'), { headers: stack.headers('r-read') });
    expect(response.status).toBe(200);
    const resource = (await response.json()) as Resource;
    expect(resource).toMatchObject({ id: 'doc.png', _etag: attachment._etag });
    expect(response.headers.get('etag')).toBe(attachment._etag);
    expect(Date.parse(response.headers.get('last-modified')!)).toBe(Number(resource._ts) * 1000);

    const again = await rawRequest('GET', one('r-read', 'doc.png'), {
      ...stack.headers('r-read'),
      'if-none-match': attachment._etag,
    });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers.etag).toBe(attachment._etag);

    const head = await onTheWire('HEAD', one('r-read', 'doc.png'), stack.headers('r-read'));
    expect(head.head).toMatch(/^HTTP\/1\.1 200/);
    expect(head.head.toLowerCase()).toContain(`etag: ${attachment._etag}`);
    expect(head.after.length).toBe(0);
  });

  it('answers 404 for an attachment that is not there', async () => {
    const response = await fetch(one('r-read', 'absent.png'), { headers: stack.headers('r-read') });
    expect(response.status).toBe(404);
    expect(await json(response)).toHaveProperty('code', 'NotFound');
  });
});

describe('GET and HEAD .../attachments/{id}/media: managed media', () => {
  const bytes = randomBytes(300 * 1024);
  let etag: string;
  let lastModified: string;

  beforeAll(async () => {
    const { status } = await upload('r-media', 'photo.png', bytes);
    expect(status).toBe(201);
  });

  it('streams the bytes with their type, length, validators, and headers that keep browsers safe', async () => {
    const response = await fetch(media('r-media', 'photo.png'), { headers: stack.headers('r-media') });
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(bytes)).toBe(true);
    etag = response.headers.get('etag')!;
    lastModified = response.headers.get('last-modified')!;
    expect(etag).toBe(`"${sha256(bytes)}"`);
    expect(Object.fromEntries(response.headers)).toMatchObject({
      'content-type': 'image/png',
      'content-length': String(bytes.length),
      'accept-ranges': 'bytes',
      'x-content-type-options': 'nosniff',
      'content-disposition': 'inline; filename="photo.png"',
      'cache-control': 'private, no-cache',
    });
    // The same ETag on every read of the same bytes.
    const again = await fetch(media('r-media', 'photo.png'), { headers: stack.headers('r-media') });
    expect(again.headers.get('etag')).toBe(etag);
    await again.arrayBuffer();
  });

  it.each([
    ['bytes=0-99', 0, 99],
    ['bytes=1000-', 1000, 300 * 1024 - 1],
    ['bytes=-500', 300 * 1024 - 500, 300 * 1024 - 1],
    ['bytes=0-0', 0, 0],
    ['bytes=307000-999999999', 307000, 300 * 1024 - 1],
    ['bytes=-999999999', 0, 300 * 1024 - 1],
  ])('answers %s with 206 and the bytes of that range', async (range, start, end) => {
    const response = await rawRequest('GET', media('r-media', 'photo.png'), {
      ...stack.headers('r-media'),
      range,
    });
    expect(response.status).toBe(206);
    expect(response.headers['content-range']).toBe(`bytes ${start}-${end}/${bytes.length}`);
    expect(response.headers['content-length']).toBe(String(end - start + 1));
    expect(response.body.equals(bytes.subarray(start, end + 1))).toBe(true);
  });

  it('answers several ranges, another unit or a malformed range with the whole body', async () => {
    for (const range of ['bytes=0-1,5-6', 'items=0-1', 'bytes=abc', 'bytes=10-5']) {
      const response = await rawRequest('GET', media('r-media', 'photo.png'), {
        ...stack.headers('r-media'),
        range,
      });
      expect(response.status).toBe(200);
      expect(response.body.length).toBe(bytes.length);
    }
  });

  it('answers a range past the end with 416 and the size', async () => {
    for (const range of [`bytes=${bytes.length}-`, 'bytes=-0']) {
      const response = await rawRequest('GET', media('r-media', 'photo.png'), {
        ...stack.headers('r-media'),
        range,
      });
      expect(response.status).toBe(416);
      expect(response.headers['content-range']).toBe(`bytes */${bytes.length}`);
      expect(JSON.parse(response.body.toString())).toMatchObject({ code: 'RangeNotSatisfiable' });
    }
  });

  it('answers 304 to If-None-Match and If-Modified-Since, before opening the media', async () => {
    const mediaReads = () => stack.requests.filter((r) => r.path.startsWith('/media/')).length;
    const before = mediaReads();
    const byTag = await rawRequest('GET', media('r-media', 'photo.png'), {
      ...stack.headers('r-media'),
      'if-none-match': `W/${etag}, "other"`,
    });
    expect(byTag.status).toBe(304);
    expect(byTag.body.length).toBe(0);
    expect(byTag.headers.etag).toBe(etag);
    const byDate = await rawRequest('GET', media('r-media', 'photo.png'), {
      ...stack.headers('r-media'),
      'if-modified-since': lastModified,
    });
    expect(byDate.status).toBe(304);
    expect(mediaReads()).toBe(before);
    const older = new Date(Date.parse(lastModified) - 60_000).toUTCString();
    const changed = await rawRequest('GET', media('r-media', 'photo.png'), {
      ...stack.headers('r-media'),
      'if-modified-since': older,
    });
    expect(changed.status).toBe(200);
    // If-None-Match decides when both are sent.
    const both = await rawRequest('GET', media('r-media', 'photo.png'), {
      ...stack.headers('r-media'),
      'if-none-match': '"other"',
      'if-modified-since': lastModified,
    });
    expect(both.status).toBe(200);
  });

  it('honours If-Range: the range while the validator holds, the whole body once it does not', async () => {
    const ranged = { ...stack.headers('r-media'), range: 'bytes=0-9' };
    expect(
      (await rawRequest('GET', media('r-media', 'photo.png'), { ...ranged, 'if-range': etag })).status,
    ).toBe(206);
    expect(
      (await rawRequest('GET', media('r-media', 'photo.png'), { ...ranged, 'if-range': lastModified }))
        .status,
    ).toBe(206);
    const stale = await rawRequest('GET', media('r-media', 'photo.png'), { ...ranged, 'if-range': '"0000"' });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(bytes.length);
    // A weak tag never satisfies If-Range.
    expect(
      (await rawRequest('GET', media('r-media', 'photo.png'), { ...ranged, 'if-range': `W/${etag}` })).status,
    ).toBe(200);
  });

  it('answers HEAD with the GET headers and no body, ranged or not', async () => {
    const whole = await onTheWire('HEAD', media('r-media', 'photo.png'), stack.headers('r-media'));
    expect(whole.head).toMatch(/^HTTP\/1\.1 200/);
    expect(whole.head.toLowerCase()).toContain(`content-length: ${bytes.length}`);
    expect(whole.head.toLowerCase()).toContain(`etag: ${etag}`);
    expect(whole.after.length).toBe(0);
    const ranged = await onTheWire('HEAD', media('r-media', 'photo.png'), {
      ...stack.headers('r-media'),
      range: 'bytes=-10',
    });
    expect(ranged.head).toMatch(/^HTTP\/1\.1 206/);
    expect(ranged.head.toLowerCase()).toContain(
      `content-range: bytes ${bytes.length - 10}-${bytes.length - 1}/${bytes.length}`,
    );
    expect(ranged.after.length).toBe(0);
  });

  it('sends a download as an attachment when asked, with an RFC 6266 filename for any name', async () => {
    await upload('r-name', 'Café crème ☕.png', Buffer.from('x'));
    const response = await fetch(`${media('r-name', 'Café crème ☕.png')}?download=1`, {
      headers: stack.headers('r-name'),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toBe(
      `attachment; filename="Caf_ cr_me _.png"; filename*=UTF-8''Caf%C3%A9%20cr%C3%A8me%20%E2%98%95.png`,
    );
  });
});

describe('types a browser would run', () => {
  it.each([
    ['page.html', 'text/html'],
    ['vector.svg', 'image/svg+xml'],
    ['page.xhtml', 'application/xhtml+xml'],
    ['app.js', 'text/javascript'],
    ['data.xml', 'application/xml'],
  ])('serves %s (%s) only ever as an attachment download', async (name, type) => {
    await upload('r-html', name, Buffer.from('<script>alert(document.domain)</script>'), type);
    const response = await fetch(media('r-html', name), { headers: stack.headers('r-html') });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toBe(`attachment; filename="${name}"`);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    await response.arrayBuffer();
  });
});

describe('metadata attachments pointing elsewhere', () => {
  async function metadata(doc: string, id: string, mediaLink: string) {
    const response = await fetch(stack.route(doc), {
      method: 'POST',
      headers: { ...stack.headers(doc), 'content-type': 'application/json' },
      body: JSON.stringify({ id, contentType: 'image/jpeg', media: mediaLink }),
    });
    expect(response.status).toBe(201);
  }

  it('redirects to an absolute https URL, uncached and without a Referer', async () => {
    await metadata('r-meta', 'cdn.jpg', 'https://cdn.example.com/p.jpg');
    const response = await rawRequest('GET', media('r-meta', 'cdn.jpg'), stack.headers('r-meta'));
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe('https://cdn.example.com/p.jpg');
    expect(response.headers['cache-control']).toBe('private, no-store');
    expect(response.headers['referrer-policy']).toBe('no-referrer');
  });

  it('answers 404 MediaElsewhere for anything else, and never streams another attachment’s managed media', async () => {
    await metadata('r-meta', 'plain.jpg', 'http://cdn.example.com/p.jpg');
    await metadata('r-meta', 'relative.jpg', 'photos/p.jpg');
    const { attachment } = await upload('r-media', 'secret.png', Buffer.from('secret bytes'));
    // Another attachment's media link copied into a metadata attachment of this document.
    await metadata('r-meta', 'forged.jpg', attachment.media);
    for (const id of ['plain.jpg', 'relative.jpg', 'forged.jpg']) {
      const response = await fetch(media('r-meta', id), { headers: stack.headers('r-meta') });
      expect(response.status).toBe(404);
      expect(await json(response)).toMatchObject({ code: 'MediaElsewhere' });
    }
  });
});

describe('ids that never collide', () => {
  it('keeps the default: the file name is the id and a taken one is 409', async () => {
    expect((await upload('r-ids', 'image.jpg', Buffer.from('one'), 'image/jpeg')).status).toBe(201);
    const again = await upload('r-ids', 'image.jpg', Buffer.from('two'), 'image/jpeg');
    expect(again.status).toBe(409);
  });

  it('derives a unique id per upload (header or form field), keeping the name as originalName', async () => {
    const byHeader = await upload('r-ids', 'image.jpg', Buffer.from('phone a'), 'image/jpeg', {
      'x-bridge-id-mode': 'unique',
    });
    const form = new FormData();
    form.append('idMode', 'unique');
    form.append('file', new Blob([Buffer.from('phone b')], { type: 'image/jpeg' }), 'image.jpg');
    const byField = await fetch(stack.route('r-ids'), {
      method: 'POST',
      headers: stack.headers('r-ids'),
      body: form,
    });
    expect(byHeader.status).toBe(201);
    expect(byField.status).toBe(201);
    const a = byHeader.attachment;
    const b = ((await byField.json()) as { attachments: Resource[] }).attachments[0]!;
    for (const attachment of [a, b]) {
      expect(attachment.id).toMatch(/^[A-Za-z0-9_-]{8}-image\.jpg$/);
      expect(attachment.originalName).toBe('image.jpg');
    }
    expect(a.id).not.toBe(b.id);
    // Downloads are named for the original file.
    const download = await fetch(media('r-ids', a.id), { headers: stack.headers('r-ids') });
    expect(download.headers.get('content-disposition')).toBe('inline; filename="image.jpg"');
    expect(await download.text()).toBe('phone a');
  });

  it('upserts with Cosmos DB’s own header (raw media) or the form field: 200 when it replaced', async () => {
    const raw = (body: string, headers: Record<string, string> = {}) =>
      fetch(stack.route('r-upsert'), {
        method: 'POST',
        headers: { ...stack.headers('r-upsert'), 'content-type': 'text/plain', slug: 'note.txt', ...headers },
        body,
      });
    expect((await raw('first')).status).toBe(201);
    expect((await raw('second')).status).toBe(409);
    const replaced = await raw('second', { 'x-ms-documentdb-is-upsert': 'true' });
    expect(replaced.status).toBe(200);
    expect(await replaced.json()).toMatchObject({ id: 'note.txt', size: 6, sha256: sha256('second') });
    expect(
      await (await fetch(media('r-upsert', 'note.txt'), { headers: stack.headers('r-upsert') })).text(),
    ).toBe('second');

    const form = new FormData();
    form.append('x-ms-documentdb-is-upsert', 'true');
    form.append('file', new Blob(['third'], { type: 'text/plain' }), 'note.txt');
    const viaField = await fetch(stack.route('r-upsert'), {
      method: 'POST',
      headers: stack.headers('r-upsert'),
      body: form,
    });
    expect(viaField.status).toBe(200);
    expect(
      await (await fetch(media('r-upsert', 'note.txt'), { headers: stack.headers('r-upsert') })).text(),
    ).toBe('third');
    const fresh = await raw('fourth', { 'x-ms-documentdb-is-upsert': 'true', slug: 'new.txt' });
    expect(fresh.status).toBe(201);
  });

  it('refuses choices that disagree, or a choice after the files', async () => {
    const clash = await upload('r-ids', 'x.png', Buffer.from('x'), 'image/png', {
      'x-bridge-id-mode': 'unique',
      'x-ms-documentdb-is-upsert': 'true',
    });
    expect(clash.status).toBe(400);
    const form = new FormData();
    form.append('file', new Blob(['x'], { type: 'image/png' }), 'late.png');
    form.append('idMode', 'unique');
    const late = await fetch(stack.route('r-ids'), {
      method: 'POST',
      headers: stack.headers('r-ids'),
      body: form,
    });
    expect(late.status).toBe(400);
    expect(await stack.listAttachments('r-ids')).not.toContainEqual(
      expect.objectContaining({ id: 'late.png' }),
    );
  });
});

describe('PUT .../attachments/{id}', () => {
  it('replaces the media with a raw body under If-Match, and refuses a stale etag with 412', async () => {
    const { attachment } = await upload('r-put', 'pic.png', Buffer.from('old'));
    const put = (body: string, ifMatch: string) =>
      fetch(one('r-put', 'pic.png'), {
        method: 'PUT',
        headers: { ...stack.headers('r-put'), 'content-type': 'image/png', 'if-match': ifMatch },
        body,
      });
    const replaced = await put('new bytes', attachment._etag);
    expect(replaced.status).toBe(200);
    const resource = (await replaced.json()) as Resource;
    expect(resource).toMatchObject({ id: 'pic.png', size: 9, sha256: sha256('new bytes') });
    const read = await fetch(media('r-put', 'pic.png'), { headers: stack.headers('r-put') });
    expect(await read.text()).toBe('new bytes');
    expect(read.headers.get('etag')).toBe(`"${sha256('new bytes')}"`);
    const stale = await put('newer', attachment._etag);
    expect(stale.status).toBe(412);
    expect(await json(stale)).toMatchObject({ code: 'PreconditionFailed' });
    expect(await (await fetch(media('r-put', 'pic.png'), { headers: stack.headers('r-put') })).text()).toBe(
      'new bytes',
    );
  });

  it('replaces the media with one file part, keeping custom properties', async () => {
    await upload('r-put', 'form.png', Buffer.from('v1'));
    const current = (await (
      await fetch(one('r-put', 'form.png'), { headers: stack.headers('r-put') })
    ).json()) as Resource;
    const props = await fetch(one('r-put', 'form.png'), {
      method: 'PUT',
      headers: { ...stack.headers('r-put'), 'content-type': 'application/json', 'if-match': current._etag },
      body: JSON.stringify({
        id: 'form.png',
        contentType: 'image/png',
        media: current.media,
        caption: 'hello',
      }),
    });
    expect(props.status).toBe(200);
    const withCaption = (await props.json()) as Resource;
    expect(withCaption).toMatchObject({ caption: 'hello', size: 2, sha256: sha256('v1') });
    const form = new FormData();
    form.append('file', new Blob(['version two'], { type: 'image/png' }), 'whatever.png');
    const replaced = await fetch(one('r-put', 'form.png'), {
      method: 'PUT',
      headers: { ...stack.headers('r-put'), 'if-match': withCaption._etag },
      body: form,
    });
    expect(replaced.status).toBe(200);
    expect(await replaced.json()).toMatchObject({ id: 'form.png', caption: 'hello', size: 11 });
  });

  it('refuses new properties that would change what describes stored bytes', async () => {
    const { attachment } = await upload('r-put', 'fixed.png', Buffer.from('fixed'));
    const response = await fetch(one('r-put', 'fixed.png'), {
      method: 'PUT',
      headers: { ...stack.headers('r-put'), 'content-type': 'application/json' },
      body: JSON.stringify({
        id: 'fixed.png',
        contentType: 'image/png',
        media: 'https://elsewhere.example/x.png',
      }),
    });
    expect(response.status).toBe(400);
    const renamed = await fetch(one('r-put', 'fixed.png'), {
      method: 'PUT',
      headers: { ...stack.headers('r-put'), 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'other.png', contentType: 'image/png', media: attachment.media }),
    });
    expect(renamed.status).toBe(400);
  });
});

describe('DELETE .../attachments/{id}', () => {
  it('honours If-Match (412) and answers 204, after which the attachment and its media are gone', async () => {
    const { attachment } = await upload('r-del', 'gone.png', Buffer.from('bye'));
    const stale = await fetch(one('r-del', 'gone.png'), {
      method: 'DELETE',
      headers: { ...stack.headers('r-del'), 'if-match': '"00000000-0000-0000-0000-000000000000"' },
    });
    expect(stale.status).toBe(412);
    const deleted = await fetch(one('r-del', 'gone.png'), {
      method: 'DELETE',
      headers: { ...stack.headers('r-del'), 'if-match': attachment._etag },
    });
    expect(deleted.status).toBe(204);
    expect((await fetch(one('r-del', 'gone.png'), { headers: stack.headers('r-del') })).status).toBe(404);
    expect((await fetch(media('r-del', 'gone.png'), { headers: stack.headers('r-del') })).status).toBe(404);
    expect(
      (await fetch(one('r-del', 'gone.png'), { method: 'DELETE', headers: stack.headers('r-del') })).status,
    ).toBe(404);
  });
});

describe('routing of the read side', () => {
  it('answers 405 with Allow computed from the route table', async () => {
    const cases: [string, string, string][] = [
      ['PATCH', stack.route('r-read'), 'GET, POST'],
      ['POST', one('r-read', 'x.png'), 'GET, HEAD, PUT, DELETE'],
      ['PUT', media('r-read', 'x.png'), 'GET, HEAD'],
    ];
    for (const [method, url, allow] of cases) {
      const response = await fetch(url, {
        method,
        headers: stack.headers('r-read'),
        body: method === 'GET' ? null : 'x',
      });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe(allow);
    }
  });

  it('asks for a key on every read route', async () => {
    for (const url of [stack.route('r-read'), one('r-read', 'doc.png'), media('r-read', 'doc.png')]) {
      expect((await fetch(url)).status).toBe(401);
    }
    expect((await fetch(one('r-read', 'doc.png'), { method: 'DELETE' })).status).toBe(401);
    expect((await fetch(one('r-read', 'doc.png'), { method: 'PUT', body: 'x' })).status).toBe(401);
  });
});

describe('managed media when Cosmos DB honours Range itself', () => {
  let ranged: Stack;
  beforeAll(async () => {
    ranged = await startStack({ emulator: { honourMediaRanges: true }, docs: ['r-206'] });
  });
  afterAll(() => ranged.close());

  it('passes the range on and streams the service’s 206', async () => {
    const bytes = randomBytes(100_000);
    const form = new FormData();
    form.append('file', new Blob([bytes], { type: 'application/pdf' }), 'r.pdf');
    expect(
      (await fetch(ranged.route('r-206'), { method: 'POST', headers: ranged.headers('r-206'), body: form }))
        .status,
    ).toBe(201);
    const url = `${ranged.route('r-206')}/r.pdf/media`;
    const response = await rawRequest('GET', url, { ...ranged.headers('r-206'), range: 'bytes=-1000' });
    expect(response.status).toBe(206);
    expect(response.body.equals(bytes.subarray(bytes.length - 1000))).toBe(true);
    const read = ranged.requests.filter((r) => r.path.startsWith('/media/')).at(-1)!;
    expect(read.headers.range).toBe(`bytes=${bytes.length - 1000}-${bytes.length - 1}`);
  });
});
