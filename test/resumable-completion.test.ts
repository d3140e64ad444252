import { randomBytes } from 'node:crypto';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { Upload } from 'tus-js-client';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { FunctionsHost } from '../src/functions-host/host.js';
import { startCuttingProxy } from './helpers/cutting-proxy.js';
import { COLL, DB, FUNCTION_KEY, json, sha256, startStack, type Stack } from './helpers/stack.js';
import { b64, tusHeaders, tusPatch as patch } from './helpers/tus-calls.js';

/**
 * Completion of resumable uploads (managed media) when it takes long, fails, or loses its caller: the
 * upload is `completing` (HEAD reports every byte, PATCH and GET answer from the state), and the
 * request, or else the durable task, makes the attachment; failures for good leave the upload
 * completable again or gone, and GET says which.
 */
const MiB = 1024 * 1024;
const UPLOADS = `uploads-${randomBytes(4).toString('hex')}`;
let stack: Stack;
let impatient: FunctionsHost;
let uploads: ContainerClient;

beforeAll(async () => {
  stack = await startStack({
    env: {
      UPLOADS_CONTAINER: UPLOADS,
      UPLOAD_LOCK_SECONDS: '15',
      // Upstream failures fail fast: a completion meeting 503s gives up for now within a second.
      UPSTREAM_RETRY_BUDGET_MS: '500',
    },
    docs: ['tc-drop', 'tc-wait', 'tc-later', 'tc-refused', 'tc-lost'],
  });
  // An instance whose final PATCH waits one second for the attachment before answering.
  impatient = await stack.startInstance({ UPLOAD_COMPLETION_WAIT_SECONDS: '1' });
  uploads = BlobServiceClient.fromConnectionString(inject('storage')).getContainerClient(UPLOADS);
});
afterEach(() => stack.emulator.faults.clear());
afterAll(() => stack.close());

const creation = (doc: string, base = stack.host.url) =>
  `${base}/api/dbs/${DB}/colls/${COLL}/docs/${doc}/attachments/uploads`;

async function create(doc: string, length: number, filename: string, base = stack.host.url) {
  const response = await fetch(creation(doc, base), {
    method: 'POST',
    headers: tusHeaders({
      'x-ms-documentdb-partitionkey': JSON.stringify([doc]),
      'upload-length': String(length),
      'upload-metadata': `filename ${b64(filename)},filetype ${b64('video/mp4')}`,
    }),
  });
  expect(response.status, await response.clone().text()).toBe(201);
  return new URL(response.headers.get('location')!, base).href;
}

const head = (url: string) => fetch(url, { method: 'HEAD', headers: tusHeaders() });
const get = (url: string) => fetch(url, { headers: { 'x-functions-key': FUNCTION_KEY } });
const idOf = (url: string) => url.split('/').pop()!;

/** Waits for the app's log line saying the upload's attachment was made, and says who made it. */
async function completedBy(url: string): Promise<unknown> {
  const line = await stack.logLine(
    (l) => l.message === 'resumable upload completed' && l.upload === idOf(url),
    60_000,
  );
  return line.by;
}

async function expectStored(doc: string, file: Buffer) {
  const [stored, ...others] = await stack.listAttachments(doc);
  expect(others).toEqual([]);
  expect(stored).toMatchObject({ size: file.length, sha256: sha256(file) });
  expect(sha256(await stack.readMedia(String(stored!.media)))).toBe(sha256(file));
}

describe('completing a resumable upload', () => {
  it('lets tus-js-client succeed when the link drops while the final PATCH waits on a long copy; the request finishes it', async () => {
    const file = randomBytes(9 * MiB + 5);
    // Cosmos DB takes the copy in, then holds it 8 s before storing: the final PATCH waits that long.
    stack.emulator.faults.add({ method: 'POST', path: '/docs/tc-drop/attachments', stallMs: 8000, times: 1 });
    const proxy = await startCuttingProxy({ target: stack.host.url });
    try {
      const done = new Promise<{ url: string; state: string | undefined }>((resolve, reject) => {
        const upload = new Upload(file, {
          endpoint: creation('tc-drop', proxy.url),
          chunkSize: 4 * MiB,
          retryDelays: [0, 100, 200, 400],
          headers: { 'x-functions-key': FUNCTION_KEY, 'x-ms-documentdb-partitionkey': '["tc-drop"]' },
          metadata: { filename: 'dropped.mp4', filetype: 'video/mp4' },
          onError: reject,
          onSuccess: ({ lastResponse }) =>
            resolve({ url: upload.url!, state: lastResponse.getHeader('x-upload-state') }),
        });
        upload.start();
      });
      const created = await stack.logLine(
        (l) => l.message === 'resumable upload created' && l.attachment === 'dropped.mp4',
      );
      await stack.logLine((l) => l.message === 'resumable upload completing' && l.upload === created.upload);
      // The completion has begun (the copy is on its way): the link drops under the final PATCH.
      proxy.cut();
      const url = `${stack.host.url}/api/uploads/${String(created.upload)}`;
      // Every byte is in: HEAD says so, PATCH answers from the state without waiting for the lock,
      // GET says the attachment is being made.
      const during = await head(url);
      expect(during.status).toBe(200);
      expect(during.headers.get('upload-offset')).toBe(String(file.length));
      expect(during.headers.get('x-upload-state')).toBe('completing');
      const empty = await patch(url, file.length, new Uint8Array(0));
      expect(empty.status).toBe(204);
      expect(empty.headers.get('upload-offset')).toBe(String(file.length));
      const again = await patch(url, 8 * MiB, file.subarray(8 * MiB));
      expect(again.status).toBe(409);
      const pending = await get(url);
      expect(pending.status).toBe(202);
      expect(pending.headers.get('retry-after')).toBe('2');
      expect(await json(pending)).toMatchObject({
        state: 'completing',
        offset: file.length,
        complete: false,
      });
      // tus-js-client asked the offset after the drop and took the upload as done.
      const outcome = await done;
      expect(outcome.state).toBe('completing');
      expect(proxy.cuts).toBe(1);
      // The request that lost its caller made the attachment.
      expect(await completedBy(url)).toBe('request');
      const finished = await get(url);
      expect(finished.status).toBe(200);
      expect(await json(finished)).toMatchObject({
        state: 'complete',
        complete: true,
        attachment: { id: 'dropped.mp4', size: file.length, sha256: sha256(file) },
      });
      await expectStored('tc-drop', file);
    } finally {
      await proxy.close();
    }
  });

  it('answers that the attachment is being made when it takes longer than the wait, then GET gives it', async () => {
    const file = randomBytes(5 * MiB + 11);
    const url = await create('tc-wait', file.length, 'slow.mp4', impatient.url);
    expect((await patch(url, 0, file.subarray(0, 4 * MiB))).status).toBe(204);
    stack.emulator.faults.add({ method: 'POST', path: '/docs/tc-wait/attachments', stallMs: 3000, times: 1 });
    const last = await patch(url, 4 * MiB, file.subarray(4 * MiB));
    expect(last.status).toBe(204);
    expect(last.headers.get('upload-offset')).toBe(String(file.length));
    expect(last.headers.get('x-upload-state')).toBe('completing');
    expect(last.headers.get('x-attachment')).toBeNull();
    expect((await get(url)).status).toBe(202);
    expect(await completedBy(url)).toBe('request');
    const done = await get(url);
    expect(done.status).toBe(200);
    expect((await json(done)).attachment).toMatchObject({ id: 'slow.mp4', sha256: sha256(file) });
    await expectStored('tc-wait', file);
  });

  it('leaves a completion Cosmos DB fails for now to the queued task, which finishes it', async () => {
    const file = randomBytes(4 * MiB + 7);
    const url = await create('tc-later', file.length, 'later.mp4');
    // Every create fails (503) until the faults are cleared.
    stack.emulator.faults.add({ method: 'POST', path: '/docs/tc-later/attachments', status: 503 });
    const last = await patch(url, 0, file);
    expect(last.status).toBe(204);
    expect(last.headers.get('x-upload-state')).toBe('completing');
    await stack.logLine((l) => l.message.includes('completion failed for now') && l.upload === idOf(url));
    expect((await get(url)).status).toBe(202);
    stack.emulator.faults.clear();
    expect(await completedBy(url)).toBe('queue');
    const done = await get(url);
    expect(done.status).toBe(200);
    expect((await json(done)).attachment).toMatchObject({ id: 'later.mp4', sha256: sha256(file) });
    await expectStored('tc-later', file);
  });

  it('answers a completion refused for good with the error, and GET says the upload completes when its last block comes again', async () => {
    const file = randomBytes(6 * MiB + 1);
    const url = await create('tc-refused', file.length, 'refused.mp4');
    // Someone else takes the id while the file goes up.
    const address = { db: DB, coll: COLL, doc: 'tc-refused' };
    const taken = await stack.cosmos.createAttachmentFromJson(
      address,
      JSON.stringify({ id: 'refused.mp4', contentType: 'text/plain', media: 'https://elsewhere.example/x' }),
      { partitionKey: ['tc-refused'] },
    );
    expect(taken.status).toBe(201);
    const failed = await patch(url, 0, file);
    expect(failed.status).toBe(409);
    expect(await json(failed)).toMatchObject({ code: 'Conflict' });
    // The final block (2 MiB + 1) was taken back: the upload is one block short.
    const short = file.length - 2 * MiB - 1;
    const state = await get(url);
    expect(state.status).toBe(409);
    expect(await json(state)).toMatchObject({
      code: 'Conflict',
      message: expect.stringContaining('refused.mp4') as string,
      state: 'failed',
      completable: true,
      offset: short,
      length: file.length,
    });
    const offset = await head(url);
    expect(offset.status).toBe(200);
    expect(offset.headers.get('upload-offset')).toBe(String(short));
    expect(offset.headers.get('x-upload-state')).toBe('failed');
    // The id is free again: sending the last block again completes the upload.
    const freed = await stack.cosmos.deleteAttachment(address, 'refused.mp4', {
      partitionKey: ['tc-refused'],
    });
    expect(freed.status).toBe(204);
    const done = await patch(url, short, file.subarray(short));
    expect(done.status).toBe(204);
    expect(done.headers.get('x-attachment')).not.toBeNull();
    expect((await get(url)).status).toBe(200);
    await expectStored('tc-refused', file);
  });

  it('gives up an upload whose staged bytes are gone: 410, and GET says it must start over', async () => {
    const file = randomBytes(5 * MiB);
    const url = await create('tc-lost', file.length, 'lost.mp4');
    expect((await patch(url, 0, file.subarray(0, 4 * MiB))).status).toBe(204);
    // The staged blocks go (as Azure drops uncommitted blocks a week after the last write).
    const data = uploads.getBlockBlobClient(`data/${idOf(url)}`);
    await data.commitBlockList([]);
    await data.delete();
    const last = await patch(url, 4 * MiB, file.subarray(4 * MiB));
    expect(last.status).toBe(410);
    expect(await json(last)).toMatchObject({ code: 'Gone' });
    const state = await get(url);
    expect(state.status).toBe(410);
    expect(await json(state)).toMatchObject({ code: 'Gone', state: 'failed', completable: false });
    expect((await head(url)).status).toBe(410);
    expect((await patch(url, 0, file.subarray(0, 1))).status).toBe(410);
    expect(await stack.listAttachments('tc-lost')).toEqual([]);
    await expect(data.getBlockList('all')).rejects.toMatchObject({ statusCode: 404 });
    const removed = await fetch(url, { method: 'DELETE', headers: tusHeaders() });
    expect(removed.status).toBe(204);
    expect((await get(url)).status).toBe(404);
  });
});
