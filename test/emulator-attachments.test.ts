import { createSecretKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mediaResourceLink } from '../src/cosmos/ids.js';
import { signedHeaders } from '../src/cosmos/signer.js';
import { startEmulator, type Emulator } from '../src/emulator/server.js';

// The attachment and media surface the bridge's read side builds on: paging, upsert, replace both
// ways with If-Match, media ranges behind a switch, the Date header, rid-based links, the fault API.

let emulator: Emulator;
let ranged: Emulator;
const KEY = () => createSecretKey(Buffer.from(emulator.key, 'base64'));
const DOC = 'dbs/db/colls/c/docs/d';

type Target = { resourceType: string; resourceLink: string };
const feedOf = (doc = DOC): Target => ({ resourceType: 'attachments', resourceLink: doc });
const itemOf = (id: string, doc = DOC): Target => ({
  resourceType: 'attachments',
  resourceLink: `${doc}/attachments/${id}`,
});
const mediaOf = (link: string): Target => ({
  resourceType: 'media',
  resourceLink: mediaResourceLink(link.replace('/media/', '')),
});

async function call(
  on: Emulator,
  method: string,
  path: string,
  target: Target,
  init: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Response> {
  return fetch(`${on.url}${path}`, {
    method,
    headers: {
      ...signedHeaders(createSecretKey(Buffer.from(on.key, 'base64')), { verb: method, ...target }),
      'x-ms-documentdb-partitionkey': '["d"]',
      ...init.headers,
    },
    body: init.body,
  });
}
const json = async (response: Response) =>
  (await response.json()) as Record<string, unknown> & {
    _etag: string;
    media: string;
    _self: string;
    _rid: string;
  };

function seed(on: Emulator): void {
  on.store.createDatabase({ id: 'db' });
  on.store.createCollection('db', { id: 'c', partitionKey: { paths: ['/id'], kind: 'Hash' } });
  on.store.createDocument('db', 'c', { id: 'd' }, '["d"]');
}

function raw(
  on: Emulator,
  id: string,
  body: string,
  type = 'text/plain',
  headers: Record<string, string> = {},
) {
  return call(on, 'POST', `/${DOC}/attachments`, feedOf(), {
    headers: { 'content-type': type, slug: encodeURIComponent(id), ...headers },
    body,
  });
}
function metadata(on: Emulator, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return call(on, 'POST', `/${DOC}/attachments`, feedOf(), {
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

beforeAll(async () => {
  emulator = await startEmulator({ port: 0, tls: false });
  ranged = await startEmulator({ port: 0, tls: false, honourMediaRanges: true });
  seed(emulator);
  seed(ranged);
});
afterAll(async () => {
  await emulator.close();
  await ranged.close();
});

describe('attachment feeds', () => {
  it('pages with x-ms-max-item-count and an opaque continuation that survives deletes between pages', async () => {
    for (const id of ['l1', 'l2', 'l3', 'l4', 'l5']) expect((await raw(emulator, id, id)).status).toBe(201);
    const first = await call(emulator, 'GET', `/${DOC}/attachments`, feedOf(), {
      headers: { 'x-ms-max-item-count': '2' },
    });
    expect(first.headers.get('x-ms-item-count')).toBe('2');
    const page1 = (await json(first)).Attachments as { id: string }[];
    expect(page1.map((a) => a.id)).toEqual(['l1', 'l2']);
    const token = first.headers.get('x-ms-continuation')!;
    expect(token).toBeTruthy();
    // l3 goes away before the next page: the page starts at l4, nothing repeated or skipped.
    expect((await call(emulator, 'DELETE', `/${DOC}/attachments/l3`, itemOf('l3'))).status).toBe(204);
    const second = await call(emulator, 'GET', `/${DOC}/attachments`, feedOf(), {
      headers: { 'x-ms-max-item-count': '2', 'x-ms-continuation': token },
    });
    expect(((await json(second)).Attachments as { id: string }[]).map((a) => a.id)).toEqual(['l4', 'l5']);
    expect(second.headers.get('x-ms-continuation')).toBeNull();
    const bad = await call(emulator, 'GET', `/${DOC}/attachments`, feedOf(), {
      headers: { 'x-ms-continuation': 'nope' },
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'BadRequest' });
    const zero = await call(emulator, 'GET', `/${DOC}/attachments`, feedOf(), {
      headers: { 'x-ms-max-item-count': '0' },
    });
    expect(zero.status).toBe(400);
  });
});

describe('attachment writes', () => {
  it('upserts: 201 when it creates, 200 when it replaces, 412 on a stale If-Match', async () => {
    const body = { id: 'u1', contentType: 'image/png', media: 'https://cdn.example/u1.png' };
    const upsert = { 'x-ms-documentdb-is-upsert': 'true' };
    const created = await metadata(emulator, body, upsert);
    expect(created.status).toBe(201);
    const first = await json(created);
    const replaced = await metadata(emulator, { ...body, note: 'second' }, upsert);
    expect(replaced.status).toBe(200);
    expect(await json(replaced)).toMatchObject({ note: 'second', _rid: first._rid });
    const stale = await metadata(emulator, body, { ...upsert, 'if-match': first._etag });
    expect(stale.status).toBe(412);

    const rawCreated = await raw(emulator, 'u2', 'one', 'text/plain', upsert);
    expect(rawCreated.status).toBe(201);
    const before = await json(rawCreated);
    const rawReplaced = await raw(emulator, 'u2', 'two!', 'text/csv', upsert);
    expect(rawReplaced.status).toBe(200);
    const after = await json(rawReplaced);
    expect(after).toMatchObject({ media: before.media, contentType: 'text/csv' });
    expect(after._etag).not.toBe(before._etag);
    const bytes = await call(emulator, 'GET', before.media, mediaOf(before.media));
    expect(await bytes.text()).toBe('two!');
  });

  it("keeps a managed attachment's media when its JSON is replaced with the same media link", async () => {
    const made = await json(await raw(emulator, 'own.txt', 'payload'));
    const marked = await call(emulator, 'PUT', `/${DOC}/attachments/own.txt`, itemOf('own.txt'), {
      headers: { 'content-type': 'application/json', 'if-match': made._etag },
      body: JSON.stringify({
        id: 'own.txt',
        contentType: 'text/plain',
        media: made.media,
        bridgeOwned: true,
      }),
    });
    expect(marked.status).toBe(200);
    const resource = await json(marked);
    expect(resource).toMatchObject({ bridgeOwned: true, media: made.media, _rid: made._rid });
    expect(resource._etag).not.toBe(made._etag);
    expect(await (await call(emulator, 'GET', made.media, mediaOf(made.media))).text()).toBe('payload');

    // Pointing it elsewhere frees the bytes.
    const moved = await call(emulator, 'PUT', `/${DOC}/attachments/own.txt`, itemOf('own.txt'), {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        id: 'own.txt',
        contentType: 'text/plain',
        media: 'https://elsewhere.example/x',
      }),
    });
    expect(moved.status).toBe(200);
    expect((await call(emulator, 'GET', made.media, mediaOf(made.media))).status).toBe(404);
  });

  it('replaces media through PUT .../attachments/{id} with a Slug, checking If-Match before reading the body', async () => {
    const made = await json(await raw(emulator, 'r1', 'old'));
    const stale = await call(emulator, 'PUT', `/${DOC}/attachments/r1`, itemOf('r1'), {
      headers: { 'content-type': 'text/plain', slug: 'r1', 'if-match': '"stale"' },
      body: 'new',
    });
    expect(stale.status).toBe(412);
    const replaced = await call(emulator, 'PUT', `/${DOC}/attachments/r1`, itemOf('r1'), {
      headers: { 'content-type': 'image/gif', slug: 'r1', 'if-match': made._etag },
      body: 'GIF89a',
    });
    expect(replaced.status).toBe(200);
    expect(await json(replaced)).toMatchObject({ id: 'r1', contentType: 'image/gif', media: made.media });
    const read = await call(emulator, 'GET', made.media, mediaOf(made.media));
    expect(read.headers.get('content-type')).toBe('image/gif');
    expect(await read.text()).toBe('GIF89a');
  });

  it('deletes with If-Match: 412 on a stale etag, 204 on the current one', async () => {
    const made = await json(await raw(emulator, 'del', 'x'));
    expect(
      (
        await call(emulator, 'DELETE', `/${DOC}/attachments/del`, itemOf('del'), {
          headers: { 'if-match': '"old"' },
        })
      ).status,
    ).toBe(412);
    expect(
      (
        await call(emulator, 'DELETE', `/${DOC}/attachments/del`, itemOf('del'), {
          headers: { 'if-match': made._etag },
        })
      ).status,
    ).toBe(204);
  });

  it('checks the content type as the service does: junt/test is 400, application/text is fine', async () => {
    expect((await raw(emulator, 'ct1', 'x', 'junt/test')).status).toBe(400);
    expect((await raw(emulator, 'ct2', 'x', 'not a type')).status).toBe(400);
    const ok = await raw(emulator, 'ct3', 'x', 'application/text; charset=utf-8');
    expect(ok.status).toBe(201);
    const made = await json(ok);
    expect(made.contentType).toBe('application/text');
    const put = await call(emulator, 'PUT', made.media, mediaOf(made.media), {
      headers: { 'content-type': 'junt/test' },
      body: 'y',
    });
    expect(put.status).toBe(400);
  });
});

describe('media reads', () => {
  it('sends the whole media with its type and length, ignoring Range by default', async () => {
    const made = await json(await raw(emulator, 'm.bin', '0123456789', 'application/octet-stream'));
    const read = await call(emulator, 'GET', made.media, mediaOf(made.media), {
      headers: { range: 'bytes=2-4' },
    });
    expect(read.status).toBe(200);
    expect(read.headers.get('content-type')).toBe('application/octet-stream');
    expect(read.headers.get('content-length')).toBe('10');
    expect(read.headers.get('content-range')).toBeNull();
    expect(await read.text()).toBe('0123456789');
  });

  it('answers one byte range with 206 and Content-Range when ranges are honoured, 416 past the end', async () => {
    const made = await json(await raw(ranged, 'm.bin', '0123456789', 'application/octet-stream'));
    const get = (range: string) =>
      call(ranged, 'GET', made.media, mediaOf(made.media), { headers: { range } });
    const middle = await get('bytes=2-4');
    expect(middle.status).toBe(206);
    expect(middle.headers.get('content-range')).toBe('bytes 2-4/10');
    expect(middle.headers.get('content-length')).toBe('3');
    expect(await middle.text()).toBe('234');
    const tail = await get('bytes=-3');
    expect(await tail.text()).toBe('789');
    expect(tail.headers.get('content-range')).toBe('bytes 7-9/10');
    const open = await get('bytes=8-');
    expect(await open.text()).toBe('89');
    const past = await get('bytes=10-');
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe('bytes */10');
    const several = await get('bytes=0-1,3-4');
    expect(several.status).toBe(200);
    expect(await several.text()).toBe('0123456789');
  });

  it('puts a Date header on every answer, errors and deletes included', async () => {
    const made = await json(await raw(emulator, 'dated', 'x'));
    const answers = [
      await call(emulator, 'GET', `/${DOC}/attachments/dated`, itemOf('dated')),
      await call(emulator, 'GET', made.media, mediaOf(made.media)),
      await call(emulator, 'GET', `/${DOC}/attachments/none`, itemOf('none')),
      await call(emulator, 'DELETE', `/${DOC}/attachments/dated`, itemOf('dated')),
      await fetch(`${emulator.url}/dbs`),
      await fetch(`${emulator.url}/_emulator/stats`),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 404, 204, 401, 200]);
    for (const answer of answers) {
      expect(Math.abs(Date.parse(answer.headers.get('date')!) - Date.now())).toBeLessThan(60_000);
    }
    expect(answers[0]!.headers.get('x-ms-max-media-storage-usage-mb')).toBe('2048');
    expect(answers[0]!.headers.get('x-ms-media-storage-usage-mb')).toMatch(/^\d+$/);
  });
});

describe('links', () => {
  it('serves rid-based links signed over the lowercased rid, and refuses them signed over the path', async () => {
    const made = await json(await raw(emulator, 'by-rid', 'x'));
    const bySelf = await fetch(`${emulator.url}/${made._self}`, {
      headers: signedHeaders(KEY(), {
        verb: 'GET',
        resourceType: 'attachments',
        resourceLink: made._rid.toLowerCase(),
      }),
    });
    expect(bySelf.status).toBe(200);
    expect(await bySelf.json()).toMatchObject({ id: 'by-rid' });
    const docSelf = made._self.replace(/attachments\/.*$/, '');
    const list = await fetch(`${emulator.url}/${docSelf}attachments/`, {
      headers: signedHeaders(KEY(), {
        verb: 'GET',
        resourceType: 'attachments',
        resourceLink: docSelf.split('/').at(-2)!.toLowerCase(),
      }),
    });
    expect(list.status).toBe(200);
    const wrong = await fetch(`${emulator.url}/${made._self}`, {
      headers: signedHeaders(KEY(), { verb: 'GET', resourceType: 'attachments', resourceLink: made._self }),
    });
    expect(wrong.status).toBe(401);
    // `//media/{id}`, as the legacy SDK asks for it, is the media, not a host name.
    const media = await fetch(`${emulator.url}/${made.media}`, {
      headers: signedHeaders(KEY(), { verb: 'GET', ...mediaOf(made.media) }),
    });
    expect(media.status).toBe(200);
  });
});

describe('fault API', () => {
  const faults = (method: string, body?: unknown) =>
    fetch(`${emulator.url}/_emulator/faults`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  it('refuses bad rules with 400 and changes nothing, lists active rules on GET, clears on DELETE', async () => {
    expect((await faults('POST', [{ method: 'POST', status: 429, times: 2 }])).status).toBe(204);
    for (const bad of [
      { nope: 1 },
      [{ status: 'x' }],
      [{ status: 99 }],
      [{ method: 'POST' }],
      [{ delayMs: -1 }],
      [{ closeEarly: true, delayMs: 1 }],
    ]) {
      const answer = await faults('POST', bad);
      expect(answer.status).toBe(400);
      expect(await answer.json()).toMatchObject({ code: 'BadRequest' });
    }
    const listed = await faults('GET');
    expect(await listed.json()).toEqual([{ method: 'POST', status: 429, times: 2, remaining: 2 }]);
    expect((await raw(emulator, 'throttled', 'x')).status).toBe(429);
    expect(await (await faults('GET')).json()).toEqual([
      { method: 'POST', status: 429, times: 2, remaining: 1 },
    ]);
    expect((await faults('DELETE')).status).toBe(204);
    expect(await (await faults('GET')).json()).toEqual([]);
    expect(() => emulator.faults.add({ method: 'GET', status: 1000 })).toThrow(/status/);
  });
});
