import { createSecretKey } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CosmosClient, type CosmosReply, type CosmosRequest } from '../src/cosmos/client.js';
import { mediaResourceLink } from '../src/cosmos/ids.js';
import { signedHeaders } from '../src/cosmos/signer.js';
import { EMULATOR_KEY, startEmulator, type Emulator } from '../src/emulator/server.js';
import { loadCosmosSettings } from '../src/settings.js';
import { sha256 } from './helpers/stack.js';

let emulator: Emulator;
let cosmos: CosmosClient;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0, maxMediaBytes: 1024 * 1024 });
  cosmos = new CosmosClient({
    ...loadCosmosSettings({ COSMOS_ENDPOINT: emulator.url, COSMOS_KEY: emulator.key }),
    timeoutMs: 10_000,
    connections: 4,
  });
});
afterAll(async () => {
  await cosmos.close();
  await emulator.close();
});

const KEY = createSecretKey(Buffer.from(EMULATOR_KEY, 'base64'));
const send = (request: CosmosRequest) => cosmos.send(request);
const body = (reply: CosmosReply) => JSON.parse(reply.body) as Record<string, unknown>;

async function createDoc(db: string, coll: string, doc: string, partitioned = true): Promise<void> {
  expect(
    (
      await send({
        method: 'POST',
        path: '/dbs',
        resourceType: 'dbs',
        resourceLink: '',
        body: JSON.stringify({ id: db }),
      })
    ).status,
  ).toBe(201);
  const collBody = partitioned ? { id: coll, partitionKey: { paths: ['/id'], kind: 'Hash' } } : { id: coll };
  expect(
    (
      await send({
        method: 'POST',
        path: `/dbs/${db}/colls`,
        resourceType: 'colls',
        resourceLink: `dbs/${db}`,
        body: JSON.stringify(collBody),
      })
    ).status,
  ).toBe(201);
  const reply = await send({
    method: 'POST',
    path: `/dbs/${db}/colls/${coll}/docs`,
    resourceType: 'docs',
    resourceLink: `dbs/${db}/colls/${coll}`,
    body: JSON.stringify({ id: doc, owner: 'x' }),
    partitionKey: partitioned ? [doc] : undefined,
  });
  expect(reply.status).toBe(201);
}

function attachments(db: string, coll: string, doc: string) {
  return {
    path: `/dbs/${db}/colls/${coll}/docs/${doc}/attachments`,
    resourceType: 'attachments',
    resourceLink: `dbs/${db}/colls/${coll}/docs/${doc}`,
  };
}
function attachment(db: string, coll: string, doc: string, att: string) {
  return {
    path: `/dbs/${db}/colls/${coll}/docs/${doc}/attachments/${encodeURIComponent(att)}`,
    resourceType: 'attachments',
    resourceLink: `dbs/${db}/colls/${coll}/docs/${doc}/attachments/${att}`,
  };
}
function media(mediaLink: string) {
  const id = mediaLink.replace('/media/', '');
  return { path: `/media/${id}`, resourceType: 'media', resourceLink: mediaResourceLink(id) };
}

describe('emulator: authorization', () => {
  it('answers 401 for a request signed with another key, naming the payload it signed', async () => {
    const other = new CosmosClient({
      endpoint: new URL(emulator.url),
      key: createSecretKey(Buffer.from('b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXk=', 'base64')),
      timeoutMs: 5000,
      connections: 1,
    });
    const reply = await other.send({ method: 'GET', path: '/dbs', resourceType: 'dbs', resourceLink: '' });
    await other.close();
    expect(reply.status).toBe(401);
    expect(body(reply)).toMatchObject({ code: 'Unauthorized' });
    expect(String(body(reply).message)).toContain("payload to sign: 'get\\ndbs\\n\\n");
    expect(reply.body).not.toContain(EMULATOR_KEY);
  });

  it('answers 401 without a signature and 403 for a date 20 minutes old', async () => {
    const unsigned = await fetch(`${emulator.url}/dbs`);
    expect(unsigned.status).toBe(401);
    const date = new Date(Date.now() - 20 * 60 * 1000).toUTCString();
    const stale = await fetch(`${emulator.url}/dbs`, {
      headers: signedHeaders(KEY, { verb: 'GET', resourceType: 'dbs', resourceLink: '' }, date),
    });
    expect(stale.status).toBe(403);
    expect(await stale.json()).toMatchObject({ code: 'Forbidden' });
  });
});

describe('emulator: resources', () => {
  it('creates, lists, reads and deletes databases, collections and documents', async () => {
    await createDoc('db1', 'c1', 'd1');
    expect(
      (
        await send({
          method: 'POST',
          path: '/dbs',
          resourceType: 'dbs',
          resourceLink: '',
          body: '{"id":"db1"}',
        })
      ).status,
    ).toBe(409);
    const doc = await send({
      method: 'GET',
      path: '/dbs/db1/colls/c1/docs/d1',
      resourceType: 'docs',
      resourceLink: 'dbs/db1/colls/c1/docs/d1',
      partitionKey: ['d1'],
    });
    expect(doc.status).toBe(200);
    expect(body(doc)).toMatchObject({ id: 'd1', owner: 'x' });
    expect(body(doc)._rid).toMatch(/^[A-Za-z0-9+=-]{24}$/);
    const wrongPartition = await send({
      method: 'GET',
      path: '/dbs/db1/colls/c1/docs/d1',
      resourceType: 'docs',
      resourceLink: 'dbs/db1/colls/c1/docs/d1',
      partitionKey: ['nope'],
    });
    expect(wrongPartition.status).toBe(404);
    const noPartition = await send({
      method: 'GET',
      path: '/dbs/db1/colls/c1/docs/d1',
      resourceType: 'docs',
      resourceLink: 'dbs/db1/colls/c1/docs/d1',
    });
    expect(noPartition.status).toBe(400);
    const mismatch = await send({
      method: 'POST',
      path: '/dbs/db1/colls/c1/docs',
      resourceType: 'docs',
      resourceLink: 'dbs/db1/colls/c1',
      body: '{"id":"d2"}',
      partitionKey: ['d3'],
    });
    expect(mismatch.status).toBe(400);
    expect(mismatch.headers['x-ms-substatus']).toBe('1001');
    const list = await send({
      method: 'GET',
      path: '/dbs/db1/colls',
      resourceType: 'colls',
      resourceLink: 'dbs/db1',
    });
    expect(body(list)).toMatchObject({ _count: 1 });
    expect(
      (await send({ method: 'DELETE', path: '/dbs/db1', resourceType: 'dbs', resourceLink: 'dbs/db1' }))
        .status,
    ).toBe(204);
    expect(
      (await send({ method: 'GET', path: '/dbs/db1', resourceType: 'dbs', resourceLink: 'dbs/db1' })).status,
    ).toBe(404);
  });
});

describe('emulator: attachments', () => {
  beforeAll(() => createDoc('db2', 'c2', 'd'));
  const pk = { partitionKey: ['d'] };

  it('stores raw media on disk and serves it back byte for byte', async () => {
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 251));
    const created = await send({
      method: 'POST',
      ...attachments('db2', 'c2', 'd'),
      headers: { 'content-type': 'image/png', slug: 'na%C3%AFve%20photo.png' },
      body: (await import('node:stream')).Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]),
      ...pk,
    });
    expect(created.status).toBe(201);
    const resource = body(created);
    expect(resource).toMatchObject({ id: 'naïve photo.png', contentType: 'image/png' });
    expect(String(resource.media)).toMatch(/^\/media\/[A-Za-z0-9+-]{28}$/);
    expect(String(resource.media).slice(7, 33)).toBe(String(resource._rid).slice(0, 26));
    expect(created.headers.etag).toBe(resource._etag);
    expect(created.headers['x-ms-max-media-storage-usage-mb']).toBe('2048');

    const read = await fetch(`${emulator.url}${media(String(resource.media)).path}`, {
      headers: signed('GET', media(String(resource.media))),
    });
    expect(read.status).toBe(200);
    expect(read.headers.get('content-type')).toBe('image/png');
    expect(sha256(Buffer.from(await read.arrayBuffer()))).toBe(sha256(bytes));
    expect(emulator.store.allMedia().map((m) => m.sha256)).toContain(sha256(bytes));
  });

  it('creates metadata attachments keeping custom properties, and refuses a taken id with 409', async () => {
    const json = JSON.stringify({
      id: 'link',
      contentType: 'image/jpeg',
      media: 'https://example.com/a.jpg',
      caption: 'hi',
    });
    const created = await send({
      method: 'POST',
      ...attachments('db2', 'c2', 'd'),
      headers: { 'content-type': 'application/json' },
      body: json,
      ...pk,
    });
    expect(created.status).toBe(201);
    expect(body(created)).toMatchObject({ id: 'link', media: 'https://example.com/a.jpg', caption: 'hi' });
    const again = await send({
      method: 'POST',
      ...attachments('db2', 'c2', 'd'),
      headers: { 'content-type': 'application/json' },
      body: json,
      ...pk,
    });
    expect(again.status).toBe(409);
    const raw = await send({
      method: 'POST',
      ...attachments('db2', 'c2', 'd'),
      headers: { 'content-type': 'text/plain', slug: 'link' },
      body: 'x',
      ...pk,
    });
    expect(raw.status).toBe(409);
    const invalid = await send({
      method: 'POST',
      ...attachments('db2', 'c2', 'd'),
      headers: { 'content-type': 'application/json' },
      body: '{"id":"x"}',
      ...pk,
    });
    expect(invalid.status).toBe(400);
  });

  it('answers 404 for a missing document and 400 without a partition key', async () => {
    const missing = await send({
      method: 'POST',
      ...attachments('db2', 'c2', 'nope'),
      headers: { 'content-type': 'text/plain', slug: 'a' },
      body: 'x',
      partitionKey: ['nope'],
    });
    expect(missing.status).toBe(404);
    const noKey = await send({
      method: 'POST',
      ...attachments('db2', 'c2', 'd'),
      headers: { 'content-type': 'text/plain', slug: 'a' },
      body: 'x',
    });
    expect(noKey.status).toBe(400);
    expect(body(noKey).message).toMatch(/PartitionKey value must be supplied/);
  });

  it('answers 413 past its size limit and keeps nothing, not even a partial file', async () => {
    const before = await readdir(emulator.mediaDir);
    const big = Buffer.alloc(1024 * 1024 + 1, 7);
    const reply = await send({
      method: 'POST',
      ...attachments('db2', 'c2', 'd'),
      headers: { 'content-type': 'application/octet-stream', slug: 'big' },
      body: (await import('node:stream')).Readable.from([big]),
      ...pk,
    });
    expect(reply.status).toBe(413);
    expect((await send({ method: 'GET', ...attachment('db2', 'c2', 'd', 'big'), ...pk })).status).toBe(404);
    expect(await readdir(emulator.mediaDir)).toEqual(before);
  });

  it('lists with paging, reads, replaces with If-Match, and deletes with the media file', async () => {
    for (const id of ['p1', 'p2', 'p3']) {
      const reply = await send({
        method: 'POST',
        ...attachments('db2', 'c2', 'd'),
        headers: { 'content-type': 'text/plain', slug: id },
        body: id,
        ...pk,
      });
      expect(reply.status).toBe(201);
    }
    const first = await send({
      method: 'GET',
      ...attachments('db2', 'c2', 'd'),
      headers: { 'x-ms-max-item-count': '2' },
      ...pk,
    });
    expect(body(first)._count).toBe(2);
    const continuation = first.headers['x-ms-continuation'];
    expect(continuation).toBeTruthy();
    const rest = await send({
      method: 'GET',
      ...attachments('db2', 'c2', 'd'),
      headers: { 'x-ms-max-item-count': '100', 'x-ms-continuation': continuation! },
      ...pk,
    });
    const all = await send({ method: 'GET', ...attachments('db2', 'c2', 'd'), ...pk });
    expect((body(first)._count as number) + (body(rest)._count as number)).toBe(body(all)._count);
    expect(body(all)._rid).toMatch(/=$/);

    const p1 = body(await send({ method: 'GET', ...attachment('db2', 'c2', 'd', 'p1'), ...pk }));
    const stale = await send({
      method: 'PUT',
      ...attachment('db2', 'c2', 'd', 'p1'),
      headers: { 'content-type': 'application/json', 'if-match': '"nope"' },
      body: JSON.stringify({ id: 'p1', contentType: 'text/plain', media: p1.media, note: 1 }),
      ...pk,
    });
    expect(stale.status).toBe(412);
    const replaced = await send({
      method: 'PUT',
      ...attachment('db2', 'c2', 'd', 'p1'),
      headers: { 'content-type': 'application/json', 'if-match': String(p1._etag) },
      body: JSON.stringify({ id: 'p1', contentType: 'text/plain', media: p1.media, note: 1 }),
      ...pk,
    });
    expect(replaced.status).toBe(200);
    expect(body(replaced)).toMatchObject({ note: 1, _rid: p1._rid });
    expect(body(replaced)._etag).not.toBe(p1._etag);

    const files = (await readdir(emulator.mediaDir)).length;
    expect((await send({ method: 'DELETE', ...attachment('db2', 'c2', 'd', 'p1'), ...pk })).status).toBe(204);
    expect((await send({ method: 'DELETE', ...attachment('db2', 'c2', 'd', 'p1'), ...pk })).status).toBe(404);
    expect((await readdir(emulator.mediaDir)).length).toBe(files - 1);
    const gone = await send({ method: 'GET', ...media(String(p1.media)) });
    expect(gone.status).toBe(404);
  });

  it('replaces media bytes with PUT /media/{id}', async () => {
    const created = body(
      await send({
        method: 'POST',
        ...attachments('db2', 'c2', 'd'),
        headers: { 'content-type': 'text/plain', slug: 'm1' },
        body: 'old',
        ...pk,
      }),
    );
    const put = await send({
      method: 'PUT',
      ...media(String(created.media)),
      headers: { 'content-type': 'text/csv' },
      body: 'new,bytes',
    });
    expect(put.status).toBe(200);
    const read = await send({ method: 'GET', ...media(String(created.media)) });
    expect(read.body).toBe('new,bytes');
    expect(read.headers['content-type']).toBe('text/csv');
  });
});

function signed(
  verb: string,
  { resourceType, resourceLink }: { resourceType: string; resourceLink: string },
) {
  return signedHeaders(KEY, { verb, resourceType, resourceLink });
}

describe('emulator: stats', () => {
  it('counts connections and requests, unsigned, for benchmarks in another process', async () => {
    const before = emulator.stats();
    await send({ method: 'GET', path: '/dbs', resourceType: 'dbs', resourceLink: '' });
    const response = await fetch(`${emulator.url}/_emulator/stats`);
    const stats = (await response.json()) as { connections: number; requests: number };
    expect(stats.requests).toBe(before.requests + 1);
    expect(stats.connections).toBeGreaterThanOrEqual(before.connections);
  });
});

describe('emulator: request checks', () => {
  it('answers 400 without x-ms-version, and for a malformed media type', async () => {
    const { 'x-ms-version': _, ...withoutVersion } = signed('GET', { resourceType: 'dbs', resourceLink: '' });
    const unversioned = await fetch(`${emulator.url}/dbs`, { headers: withoutVersion });
    expect(unversioned.status).toBe(400);
    await createDoc('db3', 'c3', 'd3');
    const badType = await send({
      method: 'POST',
      ...attachments('db3', 'c3', 'd3'),
      headers: { 'content-type': 'not a type', slug: 'x' },
      body: 'x',
      partitionKey: ['d3'],
    });
    expect(badType.status).toBe(400);
  });
});
