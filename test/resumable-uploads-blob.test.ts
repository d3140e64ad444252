import { randomBytes } from 'node:crypto';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { Upload } from 'tus-js-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { blobNameFor } from '../src/media/blob.js';
import { startCuttingProxy } from './helpers/cutting-proxy.js';
import { COLL, DB, FUNCTION_KEY, sha256, startStack, type Stack } from './helpers/stack.js';

const MiB = 1024 * 1024;
let stack: Stack;
let media: ContainerClient;

beforeAll(async () => {
  // No blob settings: the dev host starts Azurite for blob media, and uploads stage there too.
  stack = await startStack({
    env: { MEDIA_STORE: 'blob', AZURITE_PORT: '0' },
    docs: ['tb-flaky', 'tb-fail'],
  });
  media = BlobServiceClient.fromConnectionString(stack.host.azurite!.connectionString).getContainerClient(
    'attachments',
  );
});
afterEach(() => stack.emulator.faults.clear());
afterAll(() => stack.close());

const b64 = (text: string) => Buffer.from(text).toString('base64');
const creation = (doc: string, base = stack.host.url) =>
  `${base}/api/dbs/${DB}/colls/${COLL}/docs/${doc}/attachments/uploads`;
const tusHeaders = (extra: Record<string, string> = {}) => ({
  'x-functions-key': FUNCTION_KEY,
  'tus-resumable': '1.0.0',
  ...extra,
});

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
});
