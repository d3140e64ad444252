import { randomBytes } from 'node:crypto';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { onTheWire, rawRequest } from './helpers/http.js';
import { json, sha256, startStack, type Stack } from './helpers/stack.js';

/**
 * The read side in blob mode over real sockets: downloads streamed from Blob Storage (Azurite), media
 * replaced and deleted without ever pointing at a missing blob or leaving one behind, and
 * DOWNLOAD_MODE=redirect's short-lived read-only SAS.
 */
type Resource = Record<string, unknown> & { id: string; _etag: string; media: string };

function blobStack(container: string, env: Record<string, string> = {}, docs: string[] = []) {
  return startStack({
    env: {
      MEDIA_STORE: 'blob',
      BLOB_CONNECTION_STRING: inject('storage'),
      BLOB_CONTAINER: container,
      ...env,
    },
    docs,
  });
}

function containerOf(name: string): ContainerClient {
  return BlobServiceClient.fromConnectionString(inject('storage')).getContainerClient(name);
}

/** The blobs of one document (their names start with database, collection, partition key, document). */
async function blobsOf(container: ContainerClient, doc: string): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of container.listBlobsFlat({ prefix: `demo/items/${JSON.stringify([doc])}/${doc}/` }))
    names.push(blob.name);
  return names;
}

async function upload(stack: Stack, doc: string, name: string, bytes: Buffer | string, type = 'image/png') {
  const form = new FormData();
  form.append('file', new Blob([bytes], { type }), name);
  const response = await fetch(stack.route(doc), { method: 'POST', headers: stack.headers(doc), body: form });
  expect(response.status).toBe(201);
  return ((await response.json()) as { attachments: Resource[] }).attachments[0]!;
}

describe('MEDIA_STORE=blob, streamed downloads', () => {
  const name = `read-${randomBytes(4).toString('hex')}`;
  let stack: Stack;
  let container: ContainerClient;
  beforeAll(async () => {
    stack = await blobStack(name, { UPSTREAM_TIMEOUT_MS: '1000' }, [
      'b-get',
      'b-put',
      'b-del',
      'b-up',
      'b-forged',
      'b-ids',
      'b-lost',
      'b-kept',
      'b-gone',
      'b-list',
    ]);
    container = containerOf(name);
  });
  afterAll(() => stack.close());

  const media = (doc: string, id: string) => `${stack.route(doc)}/${encodeURIComponent(id)}/media`;

  it('streams the blob with its validators, ranges, 304 and HEAD', async () => {
    const bytes = randomBytes(200_000);
    await upload(stack, 'b-get', 'big.png', bytes);
    const whole = await fetch(media('b-get', 'big.png'), { headers: stack.headers('b-get') });
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);
    const etag = whole.headers.get('etag')!;
    expect(etag).toBe(`"${sha256(bytes)}"`);
    expect(whole.headers.get('content-length')).toBe(String(bytes.length));
    const ranged = await rawRequest('GET', media('b-get', 'big.png'), {
      ...stack.headers('b-get'),
      range: 'bytes=5000-5099',
    });
    expect(ranged.status).toBe(206);
    expect(ranged.headers['content-range']).toBe(`bytes 5000-5099/${bytes.length}`);
    expect(ranged.body.equals(bytes.subarray(5000, 5100))).toBe(true);
    const suffix = await rawRequest('GET', media('b-get', 'big.png'), {
      ...stack.headers('b-get'),
      range: 'bytes=-7',
    });
    expect(suffix.body.equals(bytes.subarray(bytes.length - 7))).toBe(true);
    const past = await rawRequest('GET', media('b-get', 'big.png'), {
      ...stack.headers('b-get'),
      range: `bytes=${bytes.length}-`,
    });
    expect(past.status).toBe(416);
    const cached = await rawRequest('GET', media('b-get', 'big.png'), {
      ...stack.headers('b-get'),
      'if-none-match': etag,
    });
    expect(cached.status).toBe(304);
    const head = await onTheWire('HEAD', media('b-get', 'big.png'), stack.headers('b-get'));
    expect(head.head).toMatch(/^HTTP\/1\.1 200/);
    expect(head.head.toLowerCase()).toContain(`content-length: ${bytes.length}`);
    expect(head.after.length).toBe(0);
  });

  it('lists and pages the metadata attachments that point at the blobs', async () => {
    for (const i of [0, 1, 2]) await upload(stack, 'b-list', `l${i}.png`, `l${i}`);
    const first = await fetch(`${stack.route('b-list')}?maxItemCount=2`, {
      headers: stack.headers('b-list'),
    });
    const page = (await first.json()) as { Attachments: Resource[] };
    expect(page.Attachments.map((a) => a.id)).toEqual(['l0.png', 'l1.png']);
    expect(page.Attachments[0]).toMatchObject({ size: 2, sha256: sha256('l0') });
    const token = first.headers.get('x-ms-continuation')!;
    const next = await fetch(
      `${stack.route('b-list')}?maxItemCount=2&continuation=${encodeURIComponent(token)}`,
      {
        headers: stack.headers('b-list'),
      },
    );
    expect(((await next.json()) as { Attachments: Resource[] }).Attachments.map((a) => a.id)).toEqual([
      'l2.png',
    ]);
    expect(next.headers.get('x-ms-continuation')).toBeNull();
  });

  it('answers every range form from the blob, and several ranges with the whole body', async () => {
    const bytes = randomBytes(10_000);
    await upload(stack, 'b-list', 'ranges.png', bytes);
    const cases: [string, number, number][] = [
      ['bytes=0-0', 0, 0],
      ['bytes=9000-', 9000, 9999],
      ['bytes=-1', 9999, 9999],
      ['bytes=5-99999', 5, 9999],
    ];
    for (const [range, start, end] of cases) {
      const answer = await rawRequest('GET', media('b-list', 'ranges.png'), {
        ...stack.headers('b-list'),
        range,
      });
      expect(answer.status, range).toBe(206);
      expect(answer.headers['content-range']).toBe(`bytes ${start}-${end}/10000`);
      expect(answer.body.equals(bytes.subarray(start, end + 1))).toBe(true);
    }
    const several = await rawRequest('GET', media('b-list', 'ranges.png'), {
      ...stack.headers('b-list'),
      range: 'bytes=0-1,3-4',
    });
    expect(several.status).toBe(200);
    expect(several.body.equals(bytes)).toBe(true);
    const ranged = await onTheWire('HEAD', media('b-list', 'ranges.png'), {
      ...stack.headers('b-list'),
      range: 'bytes=0-9',
    });
    expect(ranged.head).toMatch(/^HTTP\/1\.1 206/);
    expect(ranged.after.length).toBe(0);
  });

  it('streams text/html only ever as an attachment download', async () => {
    await upload(stack, 'b-list', 'page.html', '<script>alert(1)</script>', 'text/html');
    const answer = await fetch(media('b-list', 'page.html'), { headers: stack.headers('b-list') });
    expect(answer.headers.get('content-disposition')).toBe('attachment; filename="page.html"');
    expect(answer.headers.get('x-content-type-options')).toBe('nosniff');
    await answer.arrayBuffer();
  });

  it('replaces the media: a new blob, the attachment swapped to it, then the old blob removed', async () => {
    const first = await upload(stack, 'b-put', 'pic.png', 'version one');
    const [oldBlob] = await blobsOf(container, 'b-put');
    const stale = await fetch(`${stack.route('b-put')}/pic.png`, {
      method: 'PUT',
      headers: { ...stack.headers('b-put'), 'content-type': 'image/png', 'if-match': '"not-the-etag"' },
      body: 'never stored',
    });
    expect(stale.status).toBe(412);
    expect(await blobsOf(container, 'b-put')).toEqual([oldBlob]);

    const replaced = await fetch(`${stack.route('b-put')}/pic.png`, {
      method: 'PUT',
      headers: { ...stack.headers('b-put'), 'content-type': 'image/png', 'if-match': first._etag },
      body: 'version two',
    });
    expect(replaced.status).toBe(200);
    const resource = (await replaced.json()) as Resource;
    expect(resource.media).not.toBe(first.media);
    expect(resource).toMatchObject({ size: 11, sha256: sha256('version two') });
    const blobs = await blobsOf(container, 'b-put');
    expect(blobs).toHaveLength(1);
    expect(blobs[0]).not.toBe(oldBlob);
    expect(await (await fetch(media('b-put', 'pic.png'), { headers: stack.headers('b-put') })).text()).toBe(
      'version two',
    );

    // Between the bridge's read and its write someone changed it: 412, and the new blob does not stay.
    const current = (await (
      await fetch(`${stack.route('b-put')}/pic.png`, { headers: stack.headers('b-put') })
    ).json()) as Resource;
    stack.emulator.faults.add({
      method: 'PUT',
      path: '/docs/b-put/attachments/pic.png',
      status: 412,
      times: 1,
    });
    const raced = await fetch(`${stack.route('b-put')}/pic.png`, {
      method: 'PUT',
      headers: { ...stack.headers('b-put'), 'content-type': 'image/png', 'if-match': current._etag },
      body: 'version three',
    });
    stack.emulator.faults.clear();
    expect(raced.status).toBe(412);
    expect(await blobsOf(container, 'b-put')).toEqual(blobs);
  });

  it('settles a replace whose answer was lost: applied, the old blob goes', async () => {
    const first = await upload(stack, 'b-lost', 'pic.png', 'old');
    const [oldBlob] = await blobsOf(container, 'b-lost');
    stack.emulator.faults.add({
      method: 'PUT',
      path: '/docs/b-lost/attachments/pic.png',
      statusAfterCommit: 500,
      times: 1,
    });
    const response = await fetch(`${stack.route('b-lost')}/pic.png`, {
      method: 'PUT',
      headers: { ...stack.headers('b-lost'), 'content-type': 'image/png', 'if-match': first._etag },
      body: 'new',
    });
    expect(response.status).toBeGreaterThanOrEqual(500);
    expect(await stack.settled('b-lost', 'pic.png')).toBe('replaced');
    const blobs = await blobsOf(container, 'b-lost');
    expect(blobs).toHaveLength(1);
    expect(blobs[0]).not.toBe(oldBlob);
    expect(await (await fetch(media('b-lost', 'pic.png'), { headers: stack.headers('b-lost') })).text()).toBe(
      'new',
    );
  });

  it('settles a replace that failed unseen: once it can no longer apply, the new blob goes', async () => {
    const first = await upload(stack, 'b-kept', 'pic.png', 'old');
    const [oldBlob] = await blobsOf(container, 'b-kept');
    stack.emulator.faults.add({
      method: 'PUT',
      path: '/docs/b-kept/attachments/pic.png',
      status: 500,
      times: 1,
    });
    const response = await fetch(`${stack.route('b-kept')}/pic.png`, {
      method: 'PUT',
      headers: { ...stack.headers('b-kept'), 'content-type': 'image/png', 'if-match': first._etag },
      body: 'new',
    });
    expect(response.status).toBeGreaterThanOrEqual(500);
    // Looked at once now and after one and two upstream timeouts: still the old version, never replaced.
    expect(await stack.settled('b-kept', 'pic.png')).toBe('absent');
    expect(await blobsOf(container, 'b-kept')).toEqual([oldBlob]);
    expect(await (await fetch(media('b-kept', 'pic.png'), { headers: stack.headers('b-kept') })).text()).toBe(
      'old',
    );
  });

  it('settles a delete whose answer was lost: the attachment gone, its blob goes', async () => {
    await upload(stack, 'b-gone', 'pic.png', 'bytes');
    stack.emulator.faults.add({
      method: 'DELETE',
      path: '/docs/b-gone/attachments/pic.png',
      dropAfterCommit: true,
      times: 1,
    });
    const response = await fetch(`${stack.route('b-gone')}/pic.png`, {
      method: 'DELETE',
      headers: stack.headers('b-gone'),
    });
    expect(response.status).toBe(502);
    expect(await stack.settled('b-gone', 'pic.png')).toBe('deleted');
    expect(await blobsOf(container, 'b-gone')).toEqual([]);
  });

  it('deletes the attachment and its blob, leaving nothing behind', async () => {
    const attachment = await upload(stack, 'b-del', 'gone.png', 'bye');
    expect(await blobsOf(container, 'b-del')).toHaveLength(1);
    const stale = await fetch(`${stack.route('b-del')}/gone.png`, {
      method: 'DELETE',
      headers: { ...stack.headers('b-del'), 'if-match': '"stale"' },
    });
    expect(stale.status).toBe(412);
    expect(await blobsOf(container, 'b-del')).toHaveLength(1);
    const deleted = await fetch(`${stack.route('b-del')}/gone.png`, {
      method: 'DELETE',
      headers: { ...stack.headers('b-del'), 'if-match': attachment._etag },
    });
    expect(deleted.status).toBe(204);
    expect(await blobsOf(container, 'b-del')).toEqual([]);
    expect(await stack.listAttachments('b-del')).toEqual([]);
  });

  it('upserts: the replaced attachment’s blob goes, the new one stays', async () => {
    await upload(stack, 'b-up', 'same.png', 'first');
    const form = new FormData();
    form.append('idMode', 'upsert');
    form.append('file', new Blob(['second'], { type: 'image/png' }), 'same.png');
    const response = await fetch(stack.route('b-up'), {
      method: 'POST',
      headers: stack.headers('b-up'),
      body: form,
    });
    expect(response.status).toBe(200);
    expect(await blobsOf(container, 'b-up')).toHaveLength(1);
    expect(await (await fetch(media('b-up', 'same.png'), { headers: stack.headers('b-up') })).text()).toBe(
      'second',
    );
  });

  it('gives two uploads of image.jpg unique ids and blobs of their own', async () => {
    for (const phone of ['a', 'b']) {
      const form = new FormData();
      form.append('idMode', 'unique');
      form.append('file', new Blob([`from ${phone}`], { type: 'image/jpeg' }), 'image.jpg');
      expect(
        (await fetch(stack.route('b-ids'), { method: 'POST', headers: stack.headers('b-ids'), body: form }))
          .status,
      ).toBe(201);
    }
    expect(await blobsOf(container, 'b-ids')).toHaveLength(2);
    const ids = (await stack.listAttachments('b-ids')).map((a) => a.id as string);
    expect(new Set(ids).size).toBe(2);
  });

  it('never reads, nor deletes, a blob another document’s upload wrote', async () => {
    const victim = await upload(stack, 'b-get', 'victim.png', 'victim bytes');
    const forged = await fetch(stack.route('b-forged'), {
      method: 'POST',
      headers: { ...stack.headers('b-forged'), 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'copy.png', contentType: 'image/png', media: victim.media }),
    });
    expect(forged.status).toBe(201);
    const read = await fetch(media('b-forged', 'copy.png'), { headers: stack.headers('b-forged') });
    expect(read.status).toBe(404);
    expect(await json(read)).toMatchObject({ code: 'MediaElsewhere' });
    const removed = await fetch(`${stack.route('b-forged')}/copy.png`, {
      method: 'DELETE',
      headers: stack.headers('b-forged'),
    });
    expect(removed.status).toBe(204);
    expect(
      await (await fetch(media('b-get', 'victim.png'), { headers: stack.headers('b-get') })).text(),
    ).toBe('victim bytes');
  });
});

describe('DOWNLOAD_MODE=redirect', () => {
  const name = `redirect-${randomBytes(4).toString('hex')}`;
  let stack: Stack;
  beforeAll(async () => {
    stack = await blobStack(name, { DOWNLOAD_MODE: 'redirect', DOWNLOAD_SAS_TTL_SECONDS: '60' }, ['b-sas']);
  });
  afterAll(() => stack.close());

  const media = (id: string) => `${stack.route('b-sas')}/${encodeURIComponent(id)}/media`;

  it('answers 302 to a read-only SAS for that one blob, never cached, with the bridge’s safe headers', async () => {
    const bytes = randomBytes(50_000);
    const attachment = await upload(stack, 'b-sas', 'photo.png', bytes);
    const answer = await rawRequest('GET', media('photo.png'), stack.headers('b-sas'));
    expect(answer.status).toBe(302);
    expect(answer.headers['cache-control']).toBe('private, no-store');
    expect(answer.headers['referrer-policy']).toBe('no-referrer');
    const location = new URL(String(answer.headers.location));
    expect(`${location.origin}${location.pathname}`).toBe(attachment.media);
    expect(location.searchParams.get('sp')).toBe('r');
    expect(location.searchParams.get('sr')).toBe('b');
    const expiry = Date.parse(location.searchParams.get('se')!);
    expect(expiry - Date.now()).toBeLessThanOrEqual(60_000);
    expect(expiry - Date.now()).toBeGreaterThan(30_000);

    const followed = await fetch(location);
    expect(Buffer.from(await followed.arrayBuffer()).equals(bytes)).toBe(true);
    expect(followed.headers.get('content-disposition')).toBe('inline; filename="photo.png"');
    const ranged = await fetch(location, { headers: { range: 'bytes=0-9' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(bytes.subarray(0, 10))).toBe(true);
    // Read-only: it cannot overwrite or delete the blob.
    const write = await fetch(location, {
      method: 'PUT',
      headers: { 'x-ms-blob-type': 'BlockBlob' },
      body: 'x',
    });
    expect(write.status).toBe(403);
    expect((await fetch(location, { method: 'DELETE' })).status).toBe(403);
  });

  it('answers conditional requests itself, and sends HTML to Blob Storage as a download', async () => {
    await upload(stack, 'b-sas', 'page.html', '<script>alert(1)</script>', 'text/html');
    const first = await rawRequest('GET', media('page.html'), stack.headers('b-sas'));
    expect(first.status).toBe(302);
    const followed = await fetch(String(first.headers.location));
    expect(followed.headers.get('content-disposition')).toBe('attachment; filename="page.html"');
    await followed.arrayBuffer();
    const etag = `"${sha256('<script>alert(1)</script>')}"`;
    const cached = await rawRequest('GET', media('page.html'), {
      ...stack.headers('b-sas'),
      'if-none-match': etag,
    });
    expect(cached.status).toBe(304);
  });
});
