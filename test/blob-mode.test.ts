import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  BlobServiceClient,
  StorageSharedKeyCredential,
  generateAccountSASQueryParameters,
  type ContainerClient,
} from '@azure/storage-blob';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../src/devhost/azurite.js';
import { blobNameFor } from '../src/media/blob.js';
import { loadSettings } from '../src/settings.js';
import { recordSecret } from './helpers/scrape.js';
import { json, sha256, startStack, type Stack } from './helpers/stack.js';

const MAX_PART = 256 * 1024;
let stack: Stack;
let container: ContainerClient;

beforeAll(async () => {
  // No blob settings: the dev host starts Azurite itself, as `npm start` does.
  stack = await startStack({
    env: {
      MEDIA_STORE: 'blob',
      AZURITE_PORT: '0',
      MAX_PART_BYTES: String(MAX_PART),
      UPSTREAM_TIMEOUT_MS: '500',
    },
    docs: [
      'b-multi',
      'b-raw',
      'b-roll',
      'b-taken',
      'b-big',
      'b-slow',
      'b-throttle',
      'same-id',
      'b-late',
      'b-503',
      'b-409',
      'b-skew',
    ],
  });
  container = BlobServiceClient.fromConnectionString(stack.host.azurite!.connectionString).getContainerClient(
    'attachments',
  );
});
afterEach(() => stack.emulator.faults.clear());
afterAll(() => stack.close());

async function blobNames(prefix = ''): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of container.listBlobsFlat({ prefix })) names.push(blob.name);
  return names.sort();
}

async function download(url: string): Promise<{ bytes: Buffer; contentType: string | undefined }> {
  const name = decodeURIComponent(new URL(url).pathname.split('/').slice(3).join('/'));
  const blob = container.getBlockBlobClient(name);
  const bytes = await blob.downloadToBuffer();
  return { bytes, contentType: (await blob.getProperties()).contentType };
}

function form(files: [string, Buffer, string?][]): FormData {
  const data = new FormData();
  for (const [name, bytes, type] of files)
    data.append('f', new Blob([bytes], { type: type ?? 'application/octet-stream' }), name);
  return data;
}

describe('MEDIA_STORE=blob', () => {
  it('streams each file into a blob and records its URL, size and sha256 in a metadata attachment', async () => {
    const photo = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31) % 256));
    const note = Buffer.from('a note');
    const response = await fetch(stack.route('b-multi'), {
      method: 'POST',
      headers: stack.headers('b-multi'),
      body: form([
        ['photo.jpg', photo, 'image/jpeg'],
        ['note.txt', note, 'text/plain'],
      ]),
    });
    expect(response.status).toBe(201);
    const { attachments } = (await response.json()) as { attachments: Record<string, unknown>[] };
    expect(attachments).toMatchObject([
      { id: 'photo.jpg', contentType: 'image/jpeg', size: photo.length, sha256: sha256(photo) },
      { id: 'note.txt', contentType: 'text/plain', size: note.length, sha256: sha256(note) },
    ]);
    const downloaded = await download(String(attachments[0]!.media));
    expect(sha256(downloaded.bytes)).toBe(sha256(photo));
    expect(downloaded.contentType).toBe('image/jpeg');
    expect((await download(String(attachments[1]!.media))).bytes.toString()).toBe('a note');
    // What Cosmos DB holds: unmanaged attachments pointing at the blobs.
    const stored = await stack.listAttachments('b-multi');
    expect(stored).toMatchObject([
      { id: 'photo.jpg', media: attachments[0]!.media, size: photo.length, sha256: sha256(photo) },
      { id: 'note.txt', media: attachments[1]!.media },
    ]);
    expect(String(stored[0]!.media)).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1\/attachments\/demo\/items\//,
    );
    expect(stack.emulator.store.allMedia()).toEqual([]);
  });

  it('does the same for a raw upload with a Slug, answering with the Cosmos resource', async () => {
    const bytes = Buffer.alloc(10_000, 9);
    const response = await fetch(stack.route('b-raw'), {
      method: 'POST',
      headers: { ...stack.headers('b-raw'), 'content-type': 'image/png', slug: 'raw.png' },
      body: bytes,
    });
    expect(response.status).toBe(201);
    const resource = await json(response);
    expect(resource).toMatchObject({
      id: 'raw.png',
      contentType: 'image/png',
      size: 10_000,
      sha256: sha256(bytes),
    });
    expect(sha256((await download(String(resource.media))).bytes)).toBe(sha256(bytes));
  });

  it('deletes the blobs when Cosmos DB refuses a later part, and rolls back the earlier ones', async () => {
    stack.emulator.store.createAttachment(
      { db: 'demo', coll: 'items', doc: 'b-roll', partitionKey: '["b-roll"]' },
      { id: 'taken.bin', contentType: 'a/b', media: 'https://elsewhere/taken.bin' },
    );
    const response = await fetch(stack.route('b-roll'), {
      method: 'POST',
      headers: stack.headers('b-roll'),
      body: form([
        ['first.bin', Buffer.from('1')],
        ['taken.bin', Buffer.from('2')],
      ]),
    });
    expect(response.status).toBe(409);
    expect((await stack.listAttachments('b-roll')).map((a) => a.id)).toEqual(['taken.bin']);
    expect(await blobNames('demo/items/["b-roll"]/')).toEqual([]);
  });

  it('deletes the blob when the parent document does not exist', async () => {
    const response = await fetch(stack.route('no-such-doc'), {
      method: 'POST',
      headers: stack.headers('no-such-doc'),
      body: form([['orphan.bin', Buffer.from('x')]]),
    });
    expect(response.status).toBe(404);
    expect(await blobNames('demo/items/["no-such-doc"]/')).toEqual([]);
  });

  it('gives every upload its own blob: a second upload of a taken id gets 409 and leaves the first blob alone', async () => {
    const first = await fetch(stack.route('b-taken'), {
      method: 'POST',
      headers: stack.headers('b-taken'),
      body: form([['mine.jpg', Buffer.from('precious')]]),
    });
    expect(first.status).toBe(201);
    const { attachments } = (await first.json()) as { attachments: { media: string }[] };
    const second = await fetch(stack.route('b-taken'), {
      method: 'POST',
      headers: stack.headers('b-taken'),
      body: form([['mine.jpg', Buffer.from('impostor')]]),
    });
    expect(second.status).toBe(409);
    expect(await json(second)).toMatchObject({ code: 'Conflict' });
    expect((await download(attachments[0]!.media)).bytes.toString()).toBe('precious');
    expect(await blobNames('demo/items/["b-taken"]/')).toHaveLength(1);
  });

  it('is not blocked by a blob some earlier failure left behind', async () => {
    await container
      .getBlockBlobClient('demo/items/["b-taken"]/b-taken/leftover/late.jpg')
      .uploadData(Buffer.from('old'));
    const response = await fetch(stack.route('b-taken'), {
      method: 'POST',
      headers: stack.headers('b-taken'),
      body: form([['late.jpg', Buffer.from('new')]]),
    });
    expect(response.status).toBe(201);
    const { attachments } = (await response.json()) as { attachments: { media: string }[] };
    expect((await download(attachments[0]!.media)).bytes.toString()).toBe('new');
  });

  it('answers 413 past MAX_PART_BYTES and leaves no blob', async () => {
    const response = await fetch(stack.route('b-big'), {
      method: 'POST',
      headers: stack.headers('b-big'),
      body: form([['huge.bin', Buffer.alloc(MAX_PART + 1)]]),
    });
    expect(response.status).toBe(413);
    expect(await blobNames('demo/items/["b-big"]/')).toEqual([]);
  });

  it('retries a throttled metadata create, and undoes both after an unknown outcome', async () => {
    stack.emulator.faults.add({
      method: 'POST',
      path: '/docs/b-throttle/',
      status: 429,
      retryAfterMs: 10,
      times: 1,
    });
    const throttled = await fetch(stack.route('b-throttle'), {
      method: 'POST',
      headers: stack.headers('b-throttle'),
      body: form([['t.bin', Buffer.alloc(MAX_PART)]]),
    });
    expect(throttled.status).toBe(201);
    stack.emulator.faults.add({ method: 'POST', path: '/docs/b-slow/', delayMs: 1500, times: 1 });
    const slow = await fetch(stack.route('b-slow'), {
      method: 'POST',
      headers: stack.headers('b-slow'),
      body: form([['slow.bin', Buffer.from('x')]]),
    });
    expect(slow.status).toBe(504);
    expect(await stack.listAttachments('b-slow')).toEqual([]);
    expect(await blobNames('demo/items/["b-slow"]/')).toEqual([]);
  });

  it('removes attachment and blob together when Cosmos DB stores the create late', async () => {
    stack.emulator.faults.add({ method: 'POST', path: '/docs/b-late/', stallMs: 1200, times: 1 });
    const response = await fetch(stack.route('b-late'), {
      method: 'POST',
      headers: stack.headers('b-late'),
      body: form([['late.bin', Buffer.from('late')]]),
    });
    expect(response.status).toBe(504);
    expect(await stack.settled('b-late', 'late.bin')).toBe('undone');
    expect(await stack.listAttachments('b-late')).toEqual([]);
    expect(await blobNames('demo/items/["b-late"]/')).toEqual([]);
  });

  it('removes attachment and blob when a 503 stored the create and the retry ran out of budget', async () => {
    stack.emulator.faults.add({ method: 'POST', path: '/docs/b-503/', statusAfterCommit: 503, times: 1 });
    stack.emulator.faults.add({
      method: 'POST',
      path: '/docs/b-503/',
      status: 429,
      retryAfterMs: 60_000,
      times: 1,
    });
    const response = await fetch(stack.route('b-503'), {
      method: 'POST',
      headers: stack.headers('b-503'),
      body: form([['maybe.bin', Buffer.from('maybe')]]),
    });
    expect(response.status).toBe(503);
    expect(await stack.listAttachments('b-503')).toEqual([]);
    expect(await blobNames('demo/items/["b-503"]/')).toEqual([]);
  });

  it('keeps the blob of a first attempt met by its retry when the lookup fails, and undoes both', async () => {
    stack.emulator.faults.add({ method: 'POST', path: '/docs/b-409/', statusAfterCommit: 503, times: 1 });
    stack.emulator.faults.add({ method: 'GET', path: '/docs/b-409/attachments/', status: 500, times: 1 });
    const response = await fetch(stack.route('b-409'), {
      method: 'POST',
      headers: stack.headers('b-409'),
      body: form([['p.bin', Buffer.from('first attempt')]]),
    });
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    expect(await stack.listAttachments('b-409')).toEqual([]);
    expect(await blobNames('demo/items/["b-409"]/')).toEqual([]);
  });

  it("knows its own attachment by its blob, whatever Cosmos DB's clock says", async () => {
    // Cosmos DB's clock ten seconds behind this machine's: `_ts` alone would call the attachment someone else's.
    stack.emulator.store.clockOffsetMs = -10_000;
    try {
      stack.emulator.faults.add({ method: 'POST', path: '/docs/b-skew/', dropAfterCommit: true, times: 1 });
      const response = await fetch(stack.route('b-skew'), {
        method: 'POST',
        headers: stack.headers('b-skew'),
        body: form([['p.bin', Buffer.from('skewed')]]),
      });
      expect(response.status).toBe(502);
      expect(await stack.listAttachments('b-skew')).toEqual([]);
      expect(await blobNames('demo/items/["b-skew"]/')).toEqual([]);
    } finally {
      stack.emulator.store.clockOffsetMs = 0;
    }
  });

  it('keeps documents that share an id in different partitions apart', async () => {
    stack.emulator.store.createCollection('demo', {
      id: 'by-owner',
      partitionKey: { paths: ['/owner'], kind: 'Hash' },
    });
    for (const owner of ['alice', 'bob']) {
      stack.emulator.store.createDocument(
        'demo',
        'by-owner',
        { id: 'same-id', owner },
        JSON.stringify([owner]),
      );
      const response = await fetch(`${stack.host.url}/api/dbs/demo/colls/by-owner/docs/same-id/attachments`, {
        method: 'POST',
        headers: {
          'x-functions-key': stack.headers()['x-functions-key']!,
          'x-ms-documentdb-partitionkey': JSON.stringify([owner]),
        },
        body: form([['avatar.png', Buffer.from(owner)]]),
      });
      expect(response.status).toBe(201);
    }
    const names = await blobNames('demo/by-owner/');
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(/^demo\/by-owner\/\["alice"\]\/same-id\/[\w-]{22}\/avatar\.png$/);
    expect(names[1]).toMatch(/^demo\/by-owner\/\["bob"\]\/same-id\/[\w-]{22}\/avatar\.png$/);
  });
});

describe('blob credentials and lost answers', () => {
  it('never stores or returns a SAS: media is the bare blob URL', async () => {
    const sas = generateAccountSASQueryParameters(
      {
        expiresOn: new Date(Date.now() + 3600_000),
        permissions: AccountSASPermissions.parse('rwdlac'),
        resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
        services: AccountSASServices.parse('b').toString(),
      },
      new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
    ).toString();
    recordSecret(new URLSearchParams(sas).get('sig') ?? undefined);
    const viaSas = await startStack({
      env: {
        MEDIA_STORE: 'blob',
        BLOB_CONNECTION_STRING: `BlobEndpoint=${stack.host.azurite!.blobEndpoint};SharedAccessSignature=${sas}`,
      },
    });
    try {
      const response = await fetch(viaSas.route(), {
        method: 'POST',
        headers: viaSas.headers(),
        body: form([['s.bin', Buffer.from('sas')]]),
      });
      const text = await response.text();
      expect(response.status).toBe(201);
      expect(text).not.toContain('sig=');
      const media = String((JSON.parse(text) as { attachments: { media: string }[] }).attachments[0]!.media);
      expect(new URL(media).search).toBe('');
      expect(JSON.stringify(await viaSas.listAttachments())).not.toContain('sig=');
    } finally {
      await viaSas.close();
    }
  });

  it('treats a commit whose answer was lost, then retried, as the success it was', async () => {
    const target = new URL(stack.host.azurite!.blobEndpoint);
    let dropped = 0;
    // Forwards to Azurite, but swallows the answer to the first block-list commit.
    const proxy = createServer((req, res) => {
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
        (answer) => {
          if (req.url?.includes('comp=blocklist') && dropped === 0) {
            dropped += 1;
            answer.resume();
            req.socket.destroy();
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      req.pipe(upstream);
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/${AZURITE_ACCOUNT}`;
    const lossy = await startStack({
      env: {
        MEDIA_STORE: 'blob',
        REPLAY_BUFFER_BYTES: '0',
        BLOB_CONNECTION_STRING: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`,
      },
    });
    try {
      const response = await fetch(lossy.route(), {
        method: 'POST',
        headers: lossy.headers(),
        body: form([['lost.bin', Buffer.alloc(100_000, 4)]]),
      });
      expect(dropped).toBe(1);
      expect(response.status).toBe(201);
      const { attachments } = (await response.json()) as { attachments: { media: string }[] };
      expect(sha256((await download(attachments[0]!.media)).bytes)).toBe(sha256(Buffer.alloc(100_000, 4)));
    } finally {
      await lossy.close();
      proxy.close();
    }
  });
});

describe('blob names', () => {
  const doc = { db: 'demo', coll: 'items', doc: 'd' };
  it('keep ids readable, escape what could change the path, and never collide', () => {
    const name = (key: Parameters<typeof blobNameFor>[1], id: string) => blobNameFor(doc, key, id, 'u1');
    expect(name(['d'], 'photo 1.jpg')).toBe('demo/items/["d"]/d/u1/photo 1.jpg');
    expect(name(['a/b'], 'x')).toBe('demo/items/["a%2Fb"]/d/u1/x');
    expect(name(['d'], 'trailing.')).toBe('demo/items/["d"]/d/u1/trailing%2E');
    expect(name(['d'], '100%')).toBe('demo/items/["d"]/d/u1/100%25');
    expect(name(['d'], '%25')).not.toBe(name(['d'], '%'));
    expect(name([1], 'x')).not.toBe(name(['1'], 'x'));
    expect(name(undefined, 'x')).toBe('demo/items/_/d/u1/x');
    expect(blobNameFor(doc, ['d'], 'x', 'u1')).not.toBe(blobNameFor(doc, ['d'], 'x', 'u2'));
    expect(name(['d'], '語'.repeat(255)).length).toBeLessThanOrEqual(1024);
    const huge = { db: 'x'.repeat(255), coll: 'y'.repeat(255), doc: 'z'.repeat(255) };
    const hugeName = blobNameFor(huge, ['k'.repeat(300)], 'a'.repeat(255), 'u1');
    const segments = [huge.db, huge.coll, JSON.stringify(['k'.repeat(300)]), huge.doc, 'u1', 'a'.repeat(255)];
    expect(hugeName).toBe(`_long/${createHash('sha256').update(JSON.stringify(segments)).digest('hex')}`);
  });
});

describe('blob settings', () => {
  const base = {
    COSMOS_ENDPOINT: 'https://a',
    COSMOS_KEY: Buffer.alloc(64, 1).toString('base64'),
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  };
  it.each([
    [{ MEDIA_STORE: 'disk' }, /MEDIA_STORE must be cosmos or blob/],
    [{ MEDIA_STORE: 'blob' }, /needs BLOB_CONNECTION_STRING, or BLOB_ACCOUNT_URL/],
    [
      {
        MEDIA_STORE: 'blob',
        BLOB_CONNECTION_STRING: 'UseDevelopmentStorage=true',
        BLOB_ACCOUNT_URL: 'https://a.blob.core.windows.net',
      },
      /not both/,
    ],
    [{ MEDIA_STORE: 'blob', BLOB_CONNECTION_STRING: 'nonsense' }, /not a storage connection string/],
    [
      { MEDIA_STORE: 'blob', BLOB_ACCOUNT_URL: 'http://a.blob.core.windows.net' },
      /BLOB_ACCOUNT_URL must be an https/,
    ],
    [
      {
        MEDIA_STORE: 'blob',
        BLOB_CONNECTION_STRING: 'UseDevelopmentStorage=true',
        BLOB_CONTAINER: 'Bad_Name',
      },
      /BLOB_CONTAINER is not a valid container name/,
    ],
    [{ BLOB_CONTAINER: 'media' }, /need MEDIA_STORE=blob/],
  ])('%j fails at start naming the setting', (env, message) => {
    expect(() => loadSettings({ ...base, ...env })).toThrow(message);
  });

  it('reads a managed-identity account URL and a container', () => {
    expect(
      loadSettings({
        ...base,
        MEDIA_STORE: 'blob',
        BLOB_ACCOUNT_URL: 'https://acct.blob.core.windows.net',
        BLOB_CONTAINER: 'media-1',
      }).media,
    ).toMatchObject({
      store: 'blob',
      container: 'media-1',
      connectionString: undefined,
    });
  });
});

describe('Blob Storage unreachable', () => {
  it('answers 502 and stores nothing in Cosmos DB', async () => {
    const down = await startStack({
      env: {
        MEDIA_STORE: 'blob',
        BLOB_CONNECTION_STRING:
          'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;',
      },
    });
    try {
      const response = await fetch(down.route(), {
        method: 'POST',
        headers: down.headers(),
        body: form([['x.bin', Buffer.from('x')]]),
      });
      expect(response.status).toBe(502);
      expect(await json(response)).toMatchObject({
        code: 'UpstreamUnreachable',
        message: expect.stringMatching(/Blob Storage/) as string,
      });
      expect(await down.listAttachments()).toEqual([]);
    } finally {
      await down.close();
    }
  });
});
