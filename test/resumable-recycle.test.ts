import { randomBytes } from 'node:crypto';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { CosmosClient } from '../src/cosmos/client.js';
import { mediaResourceLink } from '../src/cosmos/ids.js';
import { signedHeaders } from '../src/cosmos/signer.js';
import { startEmulator, type Emulator } from '../src/emulator/server.js';
import { loadCosmosSettings } from '../src/settings.js';
import { startAppProcess, type AppProcess } from './helpers/app-process.js';
import { recordSecret } from './helpers/scrape.js';
import { FUNCTION_KEY, sha256 } from './helpers/stack.js';
import { b64, tusHeaders, tusPatch as patch } from './helpers/tus-calls.js';

/**
 * Resumable uploads outlive the instance serving them. An instance killed while it makes an upload's
 * attachment: another instance's queue-triggered function finishes the completion, taking over the
 * attachment the dead attempt stored. An instance killed mid-PATCH: its lock lapses (15 s here) and
 * another instance goes on with the upload.
 */
const LOCK_SECONDS = 15;
const MiB = 1024 * 1024;
const DOCS = ['tr-complete', 'tr-patch'];
let emulator: Emulator;
let cosmos: CosmosClient;
let env: Record<string, string>;
let uploads: ContainerClient;
const running: AppProcess[] = [];

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  emulator.store.createDatabase({ id: 'demo' });
  emulator.store.createCollection('demo', { id: 'items', partitionKey: { paths: ['/id'], kind: 'Hash' } });
  for (const doc of DOCS) emulator.store.createDocument('demo', 'items', { id: doc }, JSON.stringify([doc]));
  cosmos = new CosmosClient({
    ...loadCosmosSettings({ COSMOS_ENDPOINT: emulator.url, COSMOS_KEY: emulator.key }),
    timeoutMs: 10_000,
    connections: 2,
  });
  const container = `tus-recycle-${randomBytes(4).toString('hex')}`;
  env = {
    PATH: process.env.PATH ?? '',
    COSMOS_ENDPOINT: emulator.url,
    COSMOS_KEY: emulator.key,
    AzureWebJobsStorage: inject('storage'),
    CLEANUP_QUEUE: `tus-recycle-${randomBytes(5).toString('hex')}`,
    UPLOADS_CONTAINER: container,
    UPLOAD_LOCK_SECONDS: String(LOCK_SECONDS),
  };
  uploads = BlobServiceClient.fromConnectionString(inject('storage')).getContainerClient(container);
  recordSecret(emulator.key, FUNCTION_KEY);
});
afterEach(async () => {
  emulator.faults.clear();
  for (const app of running.splice(0)) await app.kill();
});
afterAll(async () => {
  await cosmos.close();
  await emulator.close();
});

async function instance(): Promise<AppProcess> {
  const app = await startAppProcess(env, {
    functionKey: FUNCTION_KEY,
    queuePollMs: 100,
    queueReceiveVisibilitySeconds: 2,
  });
  running.push(app);
  return app;
}

async function create(base: string, doc: string, length: number, filename: string): Promise<string> {
  const response = await fetch(`${base}/api/dbs/demo/colls/items/docs/${doc}/attachments/uploads`, {
    method: 'POST',
    headers: tusHeaders({
      'x-ms-documentdb-partitionkey': JSON.stringify([doc]),
      'upload-length': String(length),
      'upload-metadata': `filename ${b64(filename)}`,
    }),
  });
  expect(response.status, await response.clone().text()).toBe(201);
  return new URL(response.headers.get('location')!, base).pathname;
}

async function attachment(doc: string, id: string): Promise<Record<string, unknown> | undefined> {
  const reply = await cosmos.readAttachment({ db: 'demo', coll: 'items', doc }, id, { partitionKey: [doc] });
  return reply.status === 200 ? (JSON.parse(reply.body) as Record<string, unknown>) : undefined;
}

async function media(link: string): Promise<Buffer> {
  const id = link.replace(/^\/media\//, '');
  const key = loadCosmosSettings({ COSMOS_ENDPOINT: emulator.url, COSMOS_KEY: emulator.key }).key;
  const response = await fetch(`${emulator.url}/media/${id}`, {
    headers: signedHeaders(key, { verb: 'GET', resourceType: 'media', resourceLink: mediaResourceLink(id) }),
  });
  return Buffer.from(await response.arrayBuffer());
}

/** Polls where nothing signals (another process's storage), up to a deadline. */
async function until<T>(look: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await look();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not in time: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('resumable uploads across recycled instances', () => {
  it('finishes a completion whose instance was killed mid-way on another instance, from the queue, taking over what the dead attempt stored', async () => {
    const [first, second] = await Promise.all([instance(), instance()]);
    const file = randomBytes(6 * MiB + 3);
    const path = await create(first.url, 'tr-complete', file.length, 'survivor.bin');
    const uploadId = path.split('/').pop()!;
    // Cosmos DB stores the copy at once but answers only after 25 s: the first instance is waiting
    // for that answer (its attachment stored, not yet marked) when it dies.
    emulator.faults.add({ method: 'POST', path: '/docs/tr-complete/attachments', delayMs: 25_000, times: 1 });
    const final = patch(first.url + path, 0, file).catch((err: unknown) => err);
    await first.line((l) => l.message === 'resumable upload completing' && l.upload === uploadId);
    const stored = await until(() => attachment('tr-complete', 'survivor.bin'), 'the dead attempt’s create');
    expect(stored.bridgeUploadId).toBeUndefined();
    await first.kill();
    expect(await final).toBeInstanceOf(Error);
    // The client asks the other instance: every byte is in, the attachment is being made.
    const state = await fetch(second.url + path, { method: 'HEAD', headers: tusHeaders() });
    expect(state.headers.get('upload-offset')).toBe(String(file.length));
    expect(state.headers.get('x-upload-state')).toBe('completing');
    // Once the dead instance's lock lapsed, the task queued with the completion finishes it there.
    const done = await second.line(
      (l) => l.message === 'resumable upload completed' && l.upload === uploadId,
      60_000,
    );
    expect(done.by).toBe('queue');
    const answer = await fetch(second.url + path, { headers: { 'x-functions-key': FUNCTION_KEY } });
    expect(answer.status).toBe(200);
    const body = (await answer.json()) as { attachment: Record<string, unknown> };
    expect(body.attachment).toMatchObject({ id: 'survivor.bin', size: file.length, sha256: sha256(file) });
    // The very attachment the dead attempt stored, now marked as the completion's own.
    const now = (await attachment('tr-complete', 'survivor.bin'))!;
    expect(now._rid).toBe(stored._rid);
    expect(now).toMatchObject({ size: file.length, sha256: sha256(file) });
    expect(now.bridgeUploadId).toBe(body.attachment.bridgeUploadId);
    expect(typeof now.bridgeUploadId).toBe('string');
    expect(sha256(await media(String(now.media)))).toBe(sha256(file));
    // The staged bytes went with the completion.
    await expect(uploads.getBlockBlobClient(`data/${uploadId}`).getBlockList('all')).rejects.toMatchObject({
      statusCode: 404,
    });
  });

  it('lets another instance go on with an upload once a killed instance’s lock lapses', async () => {
    const [first, second] = await Promise.all([instance(), instance()]);
    const file = randomBytes(9 * MiB + 1);
    const path = await create(first.url, 'tr-patch', file.length, 'resumed.bin');
    const uploadId = path.split('/').pop()!;
    // A PATCH that sends 5 MiB, then stalls: the first instance holds the lock, mid-PATCH, when it dies.
    let sent = false;
    const stalled = patch(
      first.url + path,
      0,
      new ReadableStream<Uint8Array>({
        pull(stream) {
          if (sent) return new Promise(() => {});
          sent = true;
          stream.enqueue(file.subarray(0, 5 * MiB));
        },
      }),
    ).catch((err: unknown) => err);
    const data = uploads.getBlockBlobClient(`data/${uploadId}`);
    await until(async () => {
      const list = await data.getBlockList('uncommitted').catch(() => undefined);
      return list?.uncommittedBlocks?.length ? true : undefined;
    }, 'the first block staged');
    await first.kill();
    expect(await stalled).toBeInstanceOf(Error);
    const head = await fetch(second.url + path, { method: 'HEAD', headers: tusHeaders() });
    const offset = Number(head.headers.get('upload-offset'));
    // The lock is the dead instance's until it lapses: 423, then the upload goes on. Nothing signals
    // a lapsed lease, so an empty PATCH asks until it is let in.
    const first423 = await patch(second.url + path, offset, new Uint8Array(0));
    expect(first423.status).toBe(423);
    await until(
      async () =>
        (await patch(second.url + path, offset, new Uint8Array(0))).status === 204 ? true : undefined,
      'the lock to lapse',
      3 * LOCK_SECONDS * 1000,
    );
    const rest = await patch(second.url + path, offset, file.subarray(offset));
    expect(rest.status, await rest.clone().text()).toBe(204);
    expect(rest.headers.get('upload-offset')).toBe(String(file.length));
    const made = (await attachment('tr-patch', 'resumed.bin'))!;
    expect(made).toMatchObject({ size: file.length, sha256: sha256(file) });
    // Byte-exact: what the dead request staged but never recorded is not in the file.
    expect(sha256(await media(String(made.media)))).toBe(sha256(file));
  });
});
