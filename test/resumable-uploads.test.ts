import { randomBytes } from 'node:crypto';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { Upload } from 'tus-js-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { FunctionsHost } from '../src/functions-host/host.js';
import { startCuttingProxy } from './helpers/cutting-proxy.js';
import {
  expectMediaServed,
  COLL,
  DB,
  DOC,
  FUNCTION_KEY,
  json,
  sha256,
  startStack,
  type Stack,
} from './helpers/stack.js';
import { tusPut, b64, tusHeaders, tusPatch as patch } from './helpers/tus-calls.js';

const MiB = 1024 * 1024;
const UPLOADS = `uploads-${randomBytes(4).toString('hex')}`;
let stack: Stack;
let second: FunctionsHost;
let uploads: ContainerClient;

beforeAll(async () => {
  stack = await startStack({
    env: { UPLOADS_CONTAINER: UPLOADS },
    docs: [
      'tus-flaky',
      'tus-small',
      'tus-race',
      'tus-two',
      'tus-owner',
      'tus-sum',
      'tus-term',
      'tus-exp',
      'tus-defer',
      'tus-read',
    ],
  });
  // A second instance of the app on the same emulator and storage; its uploads expire at once.
  second = await stack.startInstance({ UPLOAD_EXPIRY_SECONDS: '1' });
  uploads = BlobServiceClient.fromConnectionString(inject('storage')).getContainerClient(UPLOADS);
});
afterAll(() => stack.close());

const creation = (doc: string, base = stack.host.url) =>
  `${base}/api/dbs/${DB}/colls/${COLL}/docs/${encodeURIComponent(doc)}/attachments/uploads`;

/** Creates an upload and returns its absolute URL. */
async function create(
  doc: string,
  length: number | undefined,
  filename: string,
  extra: Record<string, string> = {},
) {
  const response = await fetch(creation(doc), {
    method: 'POST',
    headers: tusHeaders({
      'x-ms-documentdb-partitionkey': JSON.stringify([doc]),
      ...(length === undefined ? { 'upload-defer-length': '1' } : { 'upload-length': String(length) }),
      'upload-metadata': `filename ${b64(filename)},filetype ${b64('application/octet-stream')}`,
      ...extra,
    }),
  });
  expect(response.status, await response.clone().text()).toBe(201);
  return new URL(response.headers.get('location')!, stack.host.url).href;
}

async function offsetOf(url: string, key = FUNCTION_KEY): Promise<number | undefined> {
  const response = await fetch(url, { method: 'HEAD', headers: tusHeaders({ 'x-functions-key': key }) });
  return response.status === 200 ? Number(response.headers.get('upload-offset')) : undefined;
}

function attachmentOf(response: Response): Record<string, unknown> {
  return JSON.parse(Buffer.from(response.headers.get('x-attachment')!, 'base64').toString('utf8')) as Record<
    string,
    unknown
  >;
}

/** Runs tus-js-client to the end, resolving with the upload URL. */
function tusUpload(
  file: Buffer,
  endpoint: string,
  doc: string,
  filename: string,
  options: { chunkSize: number },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const upload = new Upload(file, {
      endpoint,
      chunkSize: options.chunkSize,
      retryDelays: [0, 50, 100, 200, 400, 800],
      headers: { 'x-functions-key': FUNCTION_KEY, 'x-ms-documentdb-partitionkey': JSON.stringify([doc]) },
      metadata: { filename, filetype: 'video/mp4' },
      onError: reject,
      onSuccess: () => resolve(upload.url!),
    });
    upload.start();
  });
}

describe('resumable uploads (tus 1.0)', () => {
  it('answers OPTIONS with the version, extensions, size limit and checksum algorithms, all exposed to browsers', async () => {
    const response = await fetch(creation(DOC), {
      method: 'OPTIONS',
      headers: { 'x-functions-key': FUNCTION_KEY },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('tus-version')).toBe('1.0.0');
    expect(response.headers.get('tus-extension')?.split(',')).toEqual(
      expect.arrayContaining([
        'creation',
        'creation-with-upload',
        'creation-defer-length',
        'termination',
        'checksum',
        'expiration',
      ]),
    );
    expect(response.headers.get('tus-max-size')).toBe(String(5 * 1024 * MiB));
    expect(response.headers.get('tus-checksum-algorithm')).toBe('sha1,sha256,md5');
    expect(response.headers.get('access-control-expose-headers')).toMatch(
      /Upload-Offset.*Location|Location.*Upload-Offset/,
    );
  });

  it('lands a file byte-exact through tus-js-client over a link that drops every few MiB, as a managed attachment', async () => {
    const file = randomBytes(9 * MiB + 12345);
    const proxy = await startCuttingProxy({ target: stack.host.url, cutEveryBytes: 2 * MiB });
    try {
      const url = await tusUpload(file, creation('tus-flaky', proxy.url), 'tus-flaky', 'clip.mp4', {
        chunkSize: 4 * MiB,
      });
      expect(proxy.cuts).toBeGreaterThanOrEqual(4);
      const state = await json(
        await fetch(new URL(new URL(url).pathname, stack.host.url), {
          headers: { 'x-functions-key': FUNCTION_KEY },
        }),
      );
      expect(state).toMatchObject({
        complete: true,
        offset: file.length,
        length: file.length,
        attachmentId: 'clip.mp4',
      });
      const attachment = state.attachment as Record<string, unknown>;
      expect(attachment).toMatchObject({
        id: 'clip.mp4',
        contentType: 'video/mp4',
        size: file.length,
        sha256: sha256(file),
      });
      const [stored] = await stack.listAttachments('tus-flaky');
      expect(stored!.id).toBe('clip.mp4');
      expect(sha256(await stack.readMedia(String(stored!.media)))).toBe(sha256(file));
    } finally {
      await proxy.close();
    }
  });

  it('keeps what fully arrived when a PATCH breaks off, and HEAD reports it', async () => {
    const file = randomBytes(10 * MiB);
    const url = await create('tus-small', file.length, 'broken.bin');
    const controller = new AbortController();
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(stream) {
        if (sent >= 6 * MiB) {
          // The link drops after 6 MiB.
          controller.abort();
          return;
        }
        stream.enqueue(file.subarray(sent, sent + MiB));
        sent += MiB;
      },
    });
    await fetch(url, {
      method: 'PATCH',
      headers: tusHeaders({ 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }),
      body,
      duplex: 'half',
      signal: controller.signal,
    }).catch(() => undefined);
    // The bridge stages what came (a full 4 MiB block and a short one) once it notices the break.
    const deadline = Date.now() + 20_000;
    let offset = await offsetOf(url);
    while (offset === 0 && Date.now() < deadline) offset = await offsetOf(url);
    expect(offset).toBeGreaterThanOrEqual(4 * MiB);
    expect(offset).toBeLessThanOrEqual(6 * MiB);
    const rest = await patch(url, offset!, file.subarray(offset));
    expect(rest.status).toBe(204);
    expect(rest.headers.get('upload-offset')).toBe(String(file.length));
    expect(attachmentOf(rest)).toMatchObject({ id: 'broken.bin', size: file.length, sha256: sha256(file) });
  });

  it('lets exactly one of two concurrent PATCHes on an upload advance it', async () => {
    const chunk = randomBytes(6 * MiB);
    const url = await create('tus-race', 2 * chunk.length, 'race.bin');
    const answers = await Promise.all([patch(url, 0, chunk), patch(url, 0, chunk)]);
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses[0]).toBe(204);
    expect([409, 423]).toContain(statuses[1]);
    expect(await offsetOf(url)).toBe(chunk.length);
  });

  it('serves one upload from two instances of the app, requests alternating between them', async () => {
    const file = randomBytes(9 * MiB + 7);
    const url = await create('tus-two', file.length, 'two.bin');
    const path = new URL(url).pathname;
    const hosts = [stack.host.url, second.url];
    let offset = 0;
    for (let i = 0; offset < file.length; i++) {
      const host = hosts[i % 2]!;
      expect(await offsetOf(host + path)).toBe(offset);
      const response = await patch(host + path, offset, file.subarray(offset, offset + 2 * MiB + 3));
      expect(response.status, await response.clone().text()).toBe(204);
      offset = Number(response.headers.get('upload-offset'));
    }
    const [stored] = await stack.listAttachments('tus-two');
    expect(sha256(await stack.readMedia(String(stored!.media)))).toBe(sha256(file));
  });

  it('gives 404 to a caller other than the creator, for every method', async () => {
    const url = await create('tus-owner', 10, 'mine.txt');
    const other = stack.host.functions.masterKey;
    expect(await offsetOf(url, other)).toBeUndefined();
    for (const method of ['HEAD', 'GET', 'DELETE']) {
      const response = await fetch(url, { method, headers: tusHeaders({ 'x-functions-key': other }) });
      expect(response.status, method).toBe(404);
    }
    const foreign = await patch(url, 0, Buffer.from('0123456789'), { 'x-functions-key': other });
    expect(foreign.status).toBe(404);
    expect(await offsetOf(url)).toBe(0);
    expect(
      (
        await fetch(url.replace(/[^/]+$/, 'AAAAAAAAAAAAAAAAAAAAAA'), {
          method: 'HEAD',
          headers: tusHeaders(),
        })
      ).status,
    ).toBe(404);
  });

  it('checks Upload-Checksum: 460 and nothing kept on a mismatch, 204 on a match', async () => {
    const url = await create('tus-sum', 11, 'sum.txt');
    const bytes = Buffer.from('hello world');
    const wrong = await patch(url, 0, bytes, { 'upload-checksum': `sha1 ${b64('not the digest')}` });
    expect(wrong.status).toBe(460);
    expect(await offsetOf(url)).toBe(0);
    const unknown = await patch(url, 0, bytes, { 'upload-checksum': 'crc32 AAAA' });
    expect(unknown.status).toBe(400);
    const right = await patch(url, 0, bytes, { 'upload-checksum': 'sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=' });
    expect(right.status).toBe(204);
    expect(right.headers.get('upload-offset')).toBe('11');
  });

  it('refuses the wrong offset (409), the wrong version (412), the wrong type (415) and an oversized upload (413)', async () => {
    const url = await create('tus-sum', 100, 'rules.txt');
    expect((await patch(url, 5, Buffer.from('x'))).status).toBe(409);
    const version = await fetch(url, {
      method: 'HEAD',
      headers: { 'x-functions-key': FUNCTION_KEY, 'tus-resumable': '0.2.2' },
    });
    expect(version.status).toBe(412);
    expect(version.headers.get('tus-version')).toBe('1.0.0');
    expect(
      (await patch(url, 0, Buffer.from('x'), { 'content-type': 'application/octet-stream' })).status,
    ).toBe(415);
    const big = await fetch(creation('tus-sum'), {
      method: 'POST',
      headers: tusHeaders({
        'upload-length': String(6 * 1024 * MiB),
        'upload-metadata': `filename ${b64('big.bin')}`,
      }),
    });
    expect(big.status).toBe(413);
  });

  it('takes bytes with the creation request, and a length given later', async () => {
    const response = await fetch(creation('tus-defer'), {
      method: 'POST',
      headers: tusHeaders({
        'x-ms-documentdb-partitionkey': '["tus-defer"]',
        'upload-defer-length': '1',
        'upload-metadata': `filename ${b64('later.txt')},uniqueId`,
        'content-type': 'application/offset+octet-stream',
      }),
      body: 'hello ',
    });
    expect(response.status).toBe(201);
    expect(response.headers.get('upload-offset')).toBe('6');
    const url = new URL(response.headers.get('location')!, stack.host.url).href;
    const head = await fetch(url, { method: 'HEAD', headers: tusHeaders() });
    expect(head.headers.get('upload-defer-length')).toBe('1');
    const last = await patch(url, 6, Buffer.from('world'), { 'upload-length': '11' });
    expect(last.status).toBe(204);
    const attachment = attachmentOf(last);
    expect(attachment.id).toMatch(/^[A-Za-z0-9_-]{8}-later\.txt$/);
    expect(attachment).toMatchObject({ originalName: 'later.txt', size: 11, sha256: sha256('hello world') });
  });

  it('removes the staged bytes and the state on termination', async () => {
    const url = await create('tus-term', 10 * MiB, 'gone.bin');
    const id = new URL(url).pathname.split('/').pop()!;
    expect((await patch(url, 0, randomBytes(5 * MiB))).status).toBe(204);
    const staged = uploads.getBlockBlobClient(`data/${id}`);
    expect((await staged.getBlockList('uncommitted')).uncommittedBlocks?.length).toBeGreaterThan(0);
    const response = await fetch(url, { method: 'DELETE', headers: tusHeaders() });
    expect(response.status).toBe(204);
    await expect(staged.getBlockList('all')).rejects.toMatchObject({ statusCode: 404 });
    expect(await uploads.getBlockBlobClient(`info/${id}`).exists()).toBe(false);
    expect(await offsetOf(url)).toBeUndefined();
    expect(await stack.listAttachments('tus-term')).toEqual([]);
  });

  it('removes expired uploads with the timer function', async () => {
    // Created through the instance whose uploads expire after one second.
    const response = await fetch(creation('tus-exp', second.url), {
      method: 'POST',
      headers: tusHeaders({
        'x-ms-documentdb-partitionkey': '["tus-exp"]',
        'upload-length': '100',
        'upload-metadata': `filename ${b64('old.bin')}`,
      }),
    });
    expect(response.status).toBe(201);
    const url = new URL(response.headers.get('location')!, second.url).href;
    const id = url.split('/').pop()!;
    expect((await patch(url, 0, randomBytes(40))).status).toBe(204);
    // Expired once its second has passed: nothing signals that, so HEAD is polled until it says so.
    const deadline = Date.now() + 10_000;
    while ((await offsetOf(url)) !== undefined) expect(Date.now()).toBeLessThan(deadline);
    const run = await fetch(`${stack.host.url}/admin/functions/expireUploads`, {
      method: 'POST',
      headers: { 'x-functions-key': stack.host.functions.masterKey, 'content-type': 'application/json' },
      body: '{"input":""}',
    });
    expect(run.status).toBe(202);
    await stack.logLine((line) => line.message === 'expired upload removed' && line.upload === id);
    expect(await uploads.getBlockBlobClient(`info/${id}`).exists()).toBe(false);
    await expect(uploads.getBlockBlobClient(`data/${id}`).getBlockList('all')).rejects.toMatchObject({
      statusCode: 404,
    });
  });

  it('serves a tus-made managed attachment through the read side: ranges, upsert by id choice, delete', async () => {
    const doc = 'tus-read';
    const first = randomBytes(3 * MiB + 17);
    await tusPut(stack.host.url, doc, 'clip.mp4', first);
    const mediaUrl = `${stack.route(doc)}/clip.mp4/media`;
    await expectMediaServed(stack, doc, 'clip.mp4', first);
    // Create-or-replace chosen by the read side's header on the creation request.
    const second = randomBytes(MiB + 3);
    const replaced = await tusPut(
      stack.host.url,
      doc,
      'clip.mp4',
      second,
      {},
      { 'x-bridge-id-mode': 'upsert' },
    );
    expect(replaced.attachment).toMatchObject({ id: 'clip.mp4', sha256: sha256(second) });
    const [only, ...others] = await stack.listAttachments(doc);
    expect(others).toEqual([]);
    expect(only).toMatchObject({ size: second.length, sha256: sha256(second) });
    const now = await fetch(mediaUrl, { headers: stack.headers(doc) });
    expect(sha256(Buffer.from(await now.arrayBuffer()))).toBe(sha256(second));
    const removed = await fetch(`${stack.route(doc)}/clip.mp4`, {
      method: 'DELETE',
      headers: stack.headers(doc),
    });
    expect(removed.status).toBe(204);
    expect(await stack.listAttachments(doc)).toEqual([]);
    expect((await fetch(mediaUrl, { headers: stack.headers(doc) })).status).toBe(404);
  });
});
