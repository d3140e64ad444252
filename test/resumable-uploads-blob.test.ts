import { randomBytes } from 'node:crypto';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { Upload } from 'tus-js-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { blobNameFor } from '../src/media/blob.js';
import { startCuttingProxy } from './helpers/cutting-proxy.js';
import {
  expectMediaServed,
  COLL,
  DB,
  FUNCTION_KEY,
  sha256,
  startStack,
  type Stack,
} from './helpers/stack.js';
import { tusPut, b64, tusHeaders } from './helpers/tus-calls.js';

const MiB = 1024 * 1024;
let stack: Stack;
let media: ContainerClient;

beforeAll(async () => {
  // No blob settings: the dev host starts Azurite for blob media, and uploads stage there too.
  stack = await startStack({
    env: { MEDIA_STORE: 'blob', AZURITE_PORT: '0' },
    docs: ['tb-flaky', 'tb-fail', 'tb-read', 'tb-forged'],
  });
  media = BlobServiceClient.fromConnectionString(stack.host.azurite!.connectionString).getContainerClient(
    'attachments',
  );
});
afterEach(() => stack.emulator.faults.clear());
afterAll(() => stack.close());

/** The blob a blob-mode attachment's media URL names, in the media container. */
const blobOf = (attachment: Record<string, unknown>) =>
  media.getBlockBlobClient(
    decodeURIComponent(new URL(String(attachment.media)).pathname).replace(/^\/[^/]+\/attachments\//, ''),
  );

const creation = (doc: string, base = stack.host.url) =>
  `${base}/api/dbs/${DB}/colls/${COLL}/docs/${doc}/attachments/uploads`;

describe('resumable uploads in blob mode', () => {
  it('commits the staged blocks as the attachment’s blob, with no copy, through a flaky link', async () => {
    const file = randomBytes(7 * MiB + 99);
    const proxy = await startCuttingProxy({ target: stack.host.url, cutEveryBytes: 2 * MiB + 1000 });
    let url = '';
    try {
      url = await new Promise<string>((resolve, reject) => {
        const upload = new Upload(file, {
          endpoint: creation('tb-flaky', proxy.url),
          chunkSize: 3 * MiB,
          retryDelays: [0, 50, 100, 200, 400, 800],
          headers: { 'x-functions-key': FUNCTION_KEY, 'x-ms-documentdb-partitionkey': '["tb-flaky"]' },
          metadata: { filename: 'movie.mp4', filetype: 'video/mp4' },
          onError: reject,
          onSuccess: () => resolve(upload.url!),
        });
        upload.start();
      });
    } finally {
      await proxy.close();
    }
    expect(proxy.cuts).toBeGreaterThanOrEqual(2);
    const uploadId = url.split('/').pop()!;
    const [attachment] = await stack.listAttachments('tb-flaky');
    const name = blobNameFor({ db: DB, coll: COLL, doc: 'tb-flaky' }, ['tb-flaky'], 'movie.mp4', uploadId);
    expect(attachment).toMatchObject({
      id: 'movie.mp4',
      contentType: 'video/mp4',
      size: file.length,
      sha256: sha256(file),
    });
    expect(decodeURIComponent(new URL(String(attachment!.media)).pathname)).toContain(name);
    const blob = media.getBlockBlobClient(name);
    expect(sha256(await blob.downloadToBuffer())).toBe(sha256(file));
    // Marked as the attachment's own, so deleting the attachment may remove it.
    expect((await blob.getProperties()).metadata?.bridgeuploadid).toBe(attachment!.bridgeUploadId);
  });

  it('leaves an upload whose attachment could not be made one block short, to be completed by sending it again', async () => {
    const file = randomBytes(5 * MiB + 3);
    const created = await fetch(creation('tb-fail'), {
      method: 'POST',
      headers: tusHeaders({
        'x-ms-documentdb-partitionkey': '["tb-fail"]',
        'upload-length': String(file.length),
        'upload-metadata': `filename ${b64('retry.bin')}`,
      }),
    });
    expect(created.status).toBe(201);
    const url = new URL(created.headers.get('location')!, stack.host.url).href;
    stack.emulator.faults.add({ method: 'POST', path: '/docs/tb-fail/', status: 409, times: 1 });
    const patch = (offset: number) =>
      fetch(url, {
        method: 'PATCH',
        headers: tusHeaders({
          'content-type': 'application/offset+octet-stream',
          'upload-offset': String(offset),
        }),
        body: file.subarray(offset),
      });
    const failed = await patch(0);
    expect(failed.status).toBe(409);
    const head = await fetch(url, { method: 'HEAD', headers: tusHeaders() });
    const offset = Number(head.headers.get('upload-offset'));
    // The 4 MiB block stays recorded; the final short block waits to be sent again.
    expect(offset).toBe(4 * MiB);
    expect(await stack.listAttachments('tb-fail')).toEqual([]);
    const done = await patch(offset);
    expect(done.status).toBe(204);
    expect(done.headers.get('upload-offset')).toBe(String(file.length));
    const [attachment] = await stack.listAttachments('tb-fail');
    expect(attachment).toMatchObject({ id: 'retry.bin', size: file.length, sha256: sha256(file) });
    const name = decodeURIComponent(new URL(String(attachment!.media)).pathname).replace(
      /^\/[^/]+\/attachments\//,
      '',
    );
    expect(sha256(await media.getBlockBlobClient(name).downloadToBuffer())).toBe(sha256(file));
  });

  it('serves a tus-made attachment through the read side: ranges, upsert by id choice, delete with its blob', async () => {
    const doc = 'tb-read';
    const first = randomBytes(3 * MiB + 17);
    const made = await tusPut(stack.host.url, doc, 'clip.mp4', first);
    const firstBlob = blobOf(made.attachment);
    const mediaUrl = `${stack.route(doc)}/clip.mp4/media`;
    await expectMediaServed(stack, doc, 'clip.mp4', first);
    // The same id again, create-or-replace chosen in Upload-Metadata: the attachment now holds the new
    // file, and the blob it held before goes.
    const second = randomBytes(2 * MiB + 5);
    const replaced = await tusPut(stack.host.url, doc, 'clip.mp4', second, { idMode: 'upsert' });
    expect(replaced.attachment).toMatchObject({ id: 'clip.mp4', sha256: sha256(second) });
    const [only, ...others] = await stack.listAttachments(doc);
    expect(others).toEqual([]);
    expect(only).toMatchObject({ id: 'clip.mp4', size: second.length, sha256: sha256(second) });
    expect(await firstBlob.exists()).toBe(false);
    const now = await fetch(mediaUrl, { headers: stack.headers(doc) });
    expect(sha256(Buffer.from(await now.arrayBuffer()))).toBe(sha256(second));
    // Delete: the attachment and the blob its upload wrote.
    const secondBlob = blobOf(replaced.attachment);
    expect(await secondBlob.exists()).toBe(true);
    const removed = await fetch(`${stack.route(doc)}/clip.mp4`, {
      method: 'DELETE',
      headers: stack.headers(doc),
    });
    expect(removed.status, await removed.clone().text()).toBe(204);
    expect(await stack.listAttachments(doc)).toEqual([]);
    expect(await secondBlob.exists()).toBe(false);
  });

  it('never reads or removes a tus blob for an attachment whose mark its metadata does not carry', async () => {
    const doc = 'tb-forged';
    const file = randomBytes(MiB + 1);
    const made = await tusPut(stack.host.url, doc, 'kept.bin', file);
    const blob = blobOf(made.attachment);
    // The attachment's mark changed behind the bridge's back: the blob is no longer provably its.
    const address = { db: DB, coll: COLL, doc };
    const [current] = await stack.listAttachments(doc);
    const forged = await stack.cosmos.replaceAttachment(
      address,
      'kept.bin',
      JSON.stringify({ ...current, bridgeUploadId: 'someone-else' }),
      { partitionKey: [doc], ifMatch: String(current!._etag) },
    );
    expect(forged.status).toBe(200);
    const read = await fetch(`${stack.route(doc)}/kept.bin/media`, { headers: stack.headers(doc) });
    expect(read.status).not.toBe(200);
    const removed = await fetch(`${stack.route(doc)}/kept.bin`, {
      method: 'DELETE',
      headers: stack.headers(doc),
    });
    expect(removed.status).toBe(204);
    expect(sha256(await blob.downloadToBuffer())).toBe(sha256(file));
  });
});
