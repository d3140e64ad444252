import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CreateFailed } from '../src/attachments/create.js';
import { findAttachment } from '../src/attachments/lookups.js';
import {
  newUploadId,
  UPLOAD_ID_PROPERTY,
  type AttachmentResource,
  type UploadRecord,
} from '../src/attachments/record.js';
import { CosmosClient, type DocumentAddress } from '../src/cosmos/client.js';
import { startEmulator, type Emulator } from '../src/emulator/server.js';
import { BlobMediaStore } from '../src/media/blob.js';
import { ManagedMediaStore } from '../src/media/managed.js';
import type { MediaStore, MediaUpload } from '../src/media/store.js';
import { loadCosmosSettings } from '../src/settings.js';

/**
 * The contract every media store keeps (issue "Never delete what was confirmed": one interface, one
 * suite both backends pass): managed media in the emulator, Blob Storage in Azurite.
 */
let emulator: Emulator;
let cosmos: CosmosClient;
const TIMEOUT_MS = 2_000;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  emulator.store.createDatabase({ id: 'demo' });
  emulator.store.createCollection('demo', { id: 'items', partitionKey: { paths: ['/id'], kind: 'Hash' } });
  cosmos = new CosmosClient({
    ...loadCosmosSettings({ COSMOS_ENDPOINT: emulator.url, COSMOS_KEY: emulator.key }),
    timeoutMs: TIMEOUT_MS,
    connections: 4,
  });
});
afterAll(async () => {
  await cosmos.close();
  await emulator.close();
});

const backends: [string, () => MediaStore][] = [
  ['managed media in Cosmos DB', () => new ManagedMediaStore(cosmos, { timeoutMs: TIMEOUT_MS })],
  [
    'Blob Storage',
    () =>
      new BlobMediaStore(
        cosmos,
        {
          store: 'blob',
          connectionString: inject('storage'),
          accountUrl: undefined,
          container: `contract-${randomBytes(4).toString('hex')}`,
        },
        TIMEOUT_MS,
      ),
  ],
];

let docs = 0;
function newDocument(): DocumentAddress {
  const doc = `contract-${++docs}-${randomBytes(3).toString('hex')}`;
  emulator.store.createDocument('demo', 'items', { id: doc }, JSON.stringify([doc]));
  return { db: 'demo', coll: 'items', doc };
}

function recordFor(
  store: MediaStore,
  address: DocumentAddress,
  id: string,
  contentType = 'image/png',
): UploadRecord {
  return {
    address,
    partitionKey: [address.doc],
    id,
    uploadId: newUploadId(),
    contentType,
    startedAt: cosmos.serviceNow(),
    media: store.kind,
  };
}

/** Bytes as a stream, with their measurement known once the stream was read to its end. */
function upload(bytes: Buffer, chunk = 64 * 1024): MediaUpload {
  let read = 0;
  const body = Readable.from(
    (function* () {
      for (let at = 0; at < bytes.length; at += chunk) {
        const piece = bytes.subarray(at, at + chunk);
        read += piece.length;
        yield piece;
      }
    })(),
  );
  const measurement = () =>
    read === bytes.length
      ? { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') }
      : undefined;
  return {
    contentType: 'image/png',
    body,
    measurement,
    measured: async () => {
      await new Promise((resolve) => (body.readableEnded ? resolve(undefined) : body.once('end', resolve)));
      return measurement()!;
    },
  };
}

/** The attachment's own media, as a download finds it. */
async function located(store: MediaStore, resource: AttachmentResource, address: DocumentAddress) {
  const media = await store.locate(resource, { address, partitionKey: [address.doc] });
  expect(media).toBeDefined();
  return media!;
}

async function readMedia(store: MediaStore, resource: AttachmentResource, address: DocumentAddress) {
  return readAll((await store.open(await located(store, resource, address))).body);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe.each(backends)('MediaStore contract: %s', (_name, makeStore) => {
  let store: MediaStore;
  beforeAll(() => {
    store = makeStore();
  });
  afterAll(() => store.close());

  it('creates an attachment from a stream under an upload id, marked with it, and records what it stored', async () => {
    const address = newDocument();
    const bytes = randomBytes(300 * 1024);
    const record = recordFor(store, address, 'photo.png');
    const created = await store.create(upload(bytes), record);
    expect(created.reply.status).toBe(201);
    expect(created.resource).toMatchObject({
      id: 'photo.png',
      contentType: 'image/png',
      [UPLOAD_ID_PROPERTY]: record.uploadId,
    });
    expect(record).toMatchObject({
      size: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
    const found = await findAttachment(cosmos, record);
    expect(found?.etag).toBe(created.etag);
  });

  it('opens the media whole and as a byte range', async () => {
    const address = newDocument();
    const bytes = randomBytes(200 * 1024);
    const record = recordFor(store, address, 'ranged.png');
    const { resource } = await store.create(upload(bytes), record);
    const media = await located(store, resource, address);
    const whole = await store.open(media);
    expect(whole.size).toBe(bytes.length);
    expect((await readAll(whole.body)).equals(bytes)).toBe(true);
    const part = await store.open(media, { start: 1000, end: 70_000 });
    expect(part.range).toEqual({ start: 1000, end: 70_000 });
    expect(part.size).toBe(bytes.length);
    expect((await readAll(part.body)).equals(bytes.subarray(1000, 70_001))).toBe(true);
  });

  it('proves its own attachment, and never another upload’s of the same id', async () => {
    const address = newDocument();
    const mine = recordFor(store, address, 'same.png');
    await store.create(upload(Buffer.from('mine')), mine);
    const found = (await findAttachment(cosmos, mine))!;
    expect(await store.prove(found, mine)).toBe('own');
    // Another upload with the same id, content type and bytes: not its own.
    const theirs = { ...recordFor(store, address, 'same.png'), size: mine.size, sha256: mine.sha256 };
    expect(await store.prove(found, theirs)).toBe('other');
  });

  it('refuses a taken id, keeping the attachment there and nothing of the second upload', async () => {
    const address = newDocument();
    const first = recordFor(store, address, 'taken.png');
    await store.create(upload(Buffer.from('first')), first);
    const second = recordFor(store, address, 'taken.png');
    const failed = await store.create(upload(Buffer.from('second')), second).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(CreateFailed);
    expect((failed as CreateFailed).outcome).toBe('refused');
    expect((failed as CreateFailed).reply?.status).toBe(409);
    await store.remove(second);
    const found = (await findAttachment(cosmos, first))!;
    expect(found.resource[UPLOAD_ID_PROPERTY]).toBe(first.uploadId);
    expect((await readMedia(store, found.resource, address)).toString()).toBe('first');
  });

  it('passes on the body’s own failure, and stores nothing', async () => {
    const address = newDocument();
    const record = recordFor(store, address, 'broken.png');
    const body = new Readable({ read() {} });
    body.push(randomBytes(100 * 1024));
    const failing = store.create(
      { contentType: 'image/png', body, measurement: () => undefined, measured: () => new Promise(() => {}) },
      record,
    );
    setImmediate(() => body.destroy(new Error('the caller left')));
    await expect(failing).rejects.toThrow('the caller left');
    await store.remove(record);
    expect(await findAttachment(cosmos, record)).toBeUndefined();
  });

  it('removes only what the record’s own upload stored, and only once nothing points at it', async () => {
    const address = newDocument();
    const record = recordFor(store, address, 'kept.png');
    const { resource } = await store.create(upload(Buffer.from('kept bytes')), record);
    const media = await located(store, resource, address);
    // Someone else's record naming the same blob (or none) removes nothing.
    await store.remove({ ...record, uploadId: newUploadId() });
    expect((await readAll((await store.open(media)).body)).toString()).toBe('kept bytes');
    await cosmos.deleteAttachment(address, record.id, { partitionKey: record.partitionKey });
    await store.remove(record);
    if (store.kind === 'blob')
      await expect(store.open(media)).rejects.toMatchObject({ code: 'BLOB_NOT_FOUND' });
  });

  it('records the size and SHA-256 of the bytes on the attachment itself', async () => {
    const address = newDocument();
    const bytes = randomBytes(10_000);
    const { resource } = await store.create(upload(bytes), recordFor(store, address, 'sized.png'));
    expect(resource).toMatchObject({
      size: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
  });

  it('locates only an attachment’s own media: a metadata attachment naming another’s is not served', async () => {
    const address = newDocument();
    const { resource } = await store.create(
      upload(Buffer.from('private')),
      recordFor(store, address, 'own.png'),
    );
    // Anyone allowed to write metadata attachments may copy another attachment's media link.
    const forged = await cosmos.createAttachmentFromJson(
      address,
      JSON.stringify({ id: 'forged.png', contentType: 'image/png', media: resource.media, size: 7 }),
      { partitionKey: [address.doc] },
    );
    expect(forged.status).toBe(201);
    const forgedResource = JSON.parse(forged.body) as AttachmentResource;
    const owner = { address, partitionKey: [address.doc] };
    expect(await store.locate(forgedResource, owner)).toBeUndefined();
    // The same attachment seen from another document or partition is not its media either.
    const elsewhere = { address: { ...address, doc: 'another' }, partitionKey: ['another'] };
    if (store.kind === 'blob') expect(await store.locate(resource, elsewhere)).toBeUndefined();
    expect(await store.locate({ ...resource, media: 'https://cdn.example/x.png' }, owner)).toBeUndefined();
  });

  it('replaces the media of the attachment at a version, keeping its custom properties', async () => {
    const address = newDocument();
    const first = recordFor(store, address, 'swap.png');
    await store.create({ ...upload(Buffer.from('old bytes')), properties: { caption: 'kept' } }, first);
    const current = (await findAttachment(cosmos, first))!;
    const oldMedia = await located(store, current.resource, address);
    const second = recordFor(store, address, 'swap.png', 'image/jpeg');
    const bytes = Buffer.from('new bytes, longer');
    const stored = await store.create({ ...upload(bytes), contentType: 'image/jpeg' }, second, {
      mode: 'replace',
      current,
    });
    expect(stored.reply.status).toBe(200);
    expect(stored.replaced?.etag).toBe(current.etag);
    expect(stored.resource).toMatchObject({
      id: 'swap.png',
      contentType: 'image/jpeg',
      caption: 'kept',
      size: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      [UPLOAD_ID_PROPERTY]: second.uploadId,
    });
    expect((await readMedia(store, stored.resource, address)).equals(bytes)).toBe(true);
    // The old blob is there until its own upload's record removes it.
    if (oldMedia.kind === 'blob') {
      expect((await readAll((await store.open(oldMedia)).body)).toString()).toBe('old bytes');
      await store.remove(first);
      await expect(store.open(oldMedia)).rejects.toMatchObject({ code: 'BLOB_NOT_FOUND' });
    }
  });

  it('refuses to replace a version that is no longer current (412), keeping nothing of it', async () => {
    const address = newDocument();
    const first = recordFor(store, address, 'stale.png');
    await store.create(upload(Buffer.from('v1')), first);
    const stale = (await findAttachment(cosmos, first))!;
    await cosmos.replaceAttachment(
      address,
      'stale.png',
      JSON.stringify({ ...stale.resource, caption: 'changed meanwhile' }),
      { partitionKey: [address.doc] },
    );
    const second = recordFor(store, address, 'stale.png');
    const failed = await store
      .create(upload(Buffer.from('v2')), second, { mode: 'replace', current: stale })
      .catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(CreateFailed);
    expect((failed as CreateFailed).reply?.status).toBe(412);
    await store.remove(second);
    const now = (await findAttachment(cosmos, first))!;
    expect(now.resource).toMatchObject({
      caption: 'changed meanwhile',
      [UPLOAD_ID_PROPERTY]: first.uploadId,
    });
    expect((await readMedia(store, now.resource, address)).toString()).toBe('v1');
  });

  it('upserts: creates (201) when the id is free, replaces (200) when it is taken', async () => {
    const address = newDocument();
    const first = recordFor(store, address, 'up.png');
    const created = await store.create(upload(Buffer.from('one')), first, { mode: 'upsert' });
    expect(created.reply.status).toBe(201);
    const second = recordFor(store, address, 'up.png');
    const replaced = await store.create(upload(Buffer.from('two')), second, { mode: 'upsert' });
    expect(replaced.reply.status).toBe(200);
    expect(replaced.replaced?.resource[UPLOAD_ID_PROPERTY]).toBe(first.uploadId);
    expect(replaced.resource[UPLOAD_ID_PROPERTY]).toBe(second.uploadId);
    expect((await readMedia(store, replaced.resource, address)).toString()).toBe('two');
  });

  it('hands out a download URL only for blobs: read-only, for that one blob, and only until it expires', async () => {
    const address = newDocument();
    const bytes = Buffer.from('<html><script>alert(1)</script></html>');
    const record = recordFor(store, address, 'page.html', 'text/html');
    const { resource } = await store.create({ ...upload(bytes), contentType: 'text/html' }, record);
    const media = await located(store, resource, address);
    const options = {
      ttlSeconds: 2,
      contentType: 'text/html',
      contentDisposition: 'attachment; filename="page.html"',
    };
    const url = await store.downloadUrl(media, options);
    if (store.kind === 'managed') {
      expect(url).toBeUndefined();
      return;
    }
    const sas = new URL(url!);
    expect(sas.searchParams.get('sp')).toBe('r');
    expect(sas.searchParams.get('sr')).toBe('b');
    const read = await fetch(sas);
    expect(read.status).toBe(200);
    expect(Buffer.from(await read.arrayBuffer()).equals(bytes)).toBe(true);
    // The storage service answers with the bridge's disposition: a browser downloads, never renders.
    expect(read.headers.get('content-disposition')).toBe('attachment; filename="page.html"');
    const write = await fetch(sas, {
      method: 'PUT',
      headers: { 'x-ms-blob-type': 'BlockBlob', 'content-type': 'text/plain' },
      body: 'overwritten',
    });
    expect(write.status).toBe(403);
    const remove = await fetch(sas, { method: 'DELETE' });
    expect(remove.status).toBe(403);
    // The same signature on another blob of the container.
    const other = await store.create(upload(Buffer.from('other')), recordFor(store, address, 'other.png'));
    const otherMedia = await located(store, other.resource, address);
    if (otherMedia.kind !== 'blob') throw new Error('expected a blob');
    const sibling = new URL(sas);
    sibling.pathname =
      sibling.pathname.replace(/[^/]+(\/[^/]+){5}$/, '') +
      otherMedia.name.split('/').map(encodeURIComponent).join('/');
    expect(sibling.pathname).not.toBe(sas.pathname);
    expect((await fetch(sibling)).status).toBe(403);
    expect((await readMedia(store, resource, address)).equals(bytes)).toBe(true);
    // Expiry: nothing signals it; poll the URL until the service refuses it, within a deadline.
    const deadline = Date.now() + 10_000;
    let status = 200;
    while (status === 200 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      status = (await fetch(sas)).status;
    }
    expect(status).toBe(403);
  });
});

describe('managed media that carries no mark (a raw-media create whose request never learned its outcome)', () => {
  const store = () => new ManagedMediaStore(cosmos, { timeoutMs: TIMEOUT_MS });

  async function unmarked(bytes: Buffer) {
    const address = newDocument();
    const record = recordFor(store(), address, 'unmarked.png');
    // The create as it reached Cosmos DB, with no mark written after it: what a dropped answer leaves.
    const reply = await cosmos.createAttachmentFromMedia(
      address,
      { id: record.id, contentType: record.contentType, body: bytes },
      { partitionKey: record.partitionKey },
    );
    expect(reply.status).toBe(201);
    Object.assign(record, { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    return { address, record };
  }

  it('is left undecided during the grace period, whoever made it', async () => {
    const { record } = await unmarked(Buffer.from('young'));
    const found = (await findAttachment(cosmos, record))!;
    expect(await store().prove(found, record)).toBe('undecided');
  });

  it('past the grace period, is the record’s own only with the very bytes it sent, and no older than its create', async () => {
    const { address, record } = await unmarked(Buffer.from('old enough'));
    // Made an hour ago: past any grace period.
    const resource = emulator.store.readAttachment(
      { ...address, partitionKey: JSON.stringify([address.doc]) },
      record.id,
    );
    (resource as { _ts: number })._ts -= 3600;
    const found = (await findAttachment(cosmos, record))!;
    expect(await store().prove(found, { ...record, startedAt: record.startedAt - 3_700_000 })).toBe('own');
    expect(
      await store().prove(found, {
        ...record,
        startedAt: record.startedAt - 3_700_000,
        sha256: '0'.repeat(64),
      }),
    ).toBe('other');
    // A create that began after it was made cannot have made it.
    expect(await store().prove(found, record)).toBe('other');
  });
});
