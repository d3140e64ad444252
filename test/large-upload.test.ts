import { createHash, createSecretKey, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mediaResourceLink } from '../src/cosmos/ids.js';
import { signedHeaders } from '../src/cosmos/signer.js';
import { AZURITE_ACCOUNT, AZURITE_KEY } from '../src/devhost/azurite.js';
import { EMULATOR_KEY } from '../src/emulator/server.js';
import { BlobServiceClient } from '@azure/storage-blob';
import { startDevHostProcess, type DevHostProcess } from './helpers/devhost-process.js';

const MiB = 1024 * 1024;
const FILE_BYTES = 200 * MiB;
const KEY = 'large-upload-test-key';
const SETTINGS = {
  PORT: '0',
  EMULATOR_PORT: '0',
  AZURITE_PORT: '0',
  DEV_FUNCTION_KEY: KEY,
  MAX_PART_BYTES: String(FILE_BYTES),
  MAX_REQUEST_BYTES: String(FILE_BYTES + MiB),
  // The Functions host's own cap on a body (100 MiB by default) must allow it too, as in Azure.
  FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: String(FILE_BYTES + 2 * MiB),
};
let host: DevHostProcess;

/** A multipart body of one file part, generated as it is sent, hashed on the way. */
function multipartUpload(size: number, filename: string) {
  const boundary = `----bridge${randomBytes(8).toString('hex')}`;
  const hash = createHash('sha256');
  const block = randomBytes(MiB);
  async function* body() {
    yield Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    );
    for (let sent = 0, i = 0; sent < size; i++) {
      const chunk = Buffer.from(block.subarray(0, Math.min(MiB, size - sent)));
      chunk.writeUInt32BE(i, 0); // every MiB differs, so a repeated or dropped chunk changes the hash
      hash.update(chunk);
      sent += chunk.length;
      yield chunk;
      await Promise.resolve();
    }
    yield Buffer.from(`\r\n--${boundary}--\r\n`);
  }
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    body: Readable.from(body()),
    sha256: () => hash.digest('hex'),
  };
}

async function upload(host: DevHostProcess, size: number, filename: string) {
  const form = multipartUpload(size, filename);
  const response = await request(`${host.url}/api/dbs/demo/colls/items/docs/welcome/attachments`, {
    method: 'POST',
    headers: {
      'content-type': form.contentType,
      'x-functions-key': KEY,
      'x-ms-documentdb-partitionkey': '["welcome"]',
    },
    body: form.body,
  });
  const answer = (await response.body.json()) as {
    attachments: { size: number; sha256: string; media: string }[];
  };
  return { status: response.statusCode, answer, sha256: form.sha256() };
}

/** Hashes a stored media item as it streams back from the emulator. */
async function storedSha256(host: DevHostProcess, mediaLink: string): Promise<string> {
  const mediaId = mediaLink.replace('/media/', '');
  const response = await request(`${host.emulatorUrl}/media/${mediaId}`, {
    headers: signedHeaders(createSecretKey(Buffer.from(EMULATOR_KEY, 'base64')), {
      verb: 'GET',
      resourceType: 'media',
      resourceLink: mediaResourceLink(mediaId),
    }),
  });
  expect(response.statusCode).toBe(200);
  const hash = createHash('sha256');
  for await (const chunk of response.body) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

describe('a 200 MiB upload through the dev host process, managed attachments', () => {
  beforeAll(async () => {
    host = await startDevHostProcess(SETTINGS);
  });
  afterAll(() => host?.interrupt());

  it('streams byte for byte into the emulator while the bridge memory stays flat', async () => {
    const warm = await upload(host, MiB, 'warm-up.bin');
    expect(warm.status).toBe(201);
    const baseline = await host.peakRss();
    const hostBaseline = await host.peakRss('host');

    const big = await upload(host, FILE_BYTES, 'big.bin');
    expect(big.status).toBe(201);
    expect(big.answer.attachments[0]).toMatchObject({ size: FILE_BYTES, sha256: big.sha256 });
    expect(await storedSha256(host, big.answer.attachments[0]!.media)).toBe(big.sha256);

    const peak = await host.peakRss();
    // A buffering bridge would grow by the file size (200 MiB) or more; streaming stays within noise.
    expect(peak - baseline).toBeLessThan(64 * MiB);
    // The local Functions host in front of it streams too.
    expect(await host.peakRss('host')).toBeLessThan(hostBaseline + 64 * MiB);
  });

  it('stops cleanly on Ctrl-C', async () => {
    expect(await host.interrupt()).toBe(0);
    expect(host.output()).toContain('SIGINT: stopping');
  });
});

describe('a 200 MiB upload through the dev host process, MEDIA_STORE=blob with Azurite', () => {
  let blobHost: DevHostProcess;
  beforeAll(async () => {
    blobHost = await startDevHostProcess({ ...SETTINGS, MEDIA_STORE: 'blob' });
  });
  afterAll(() => blobHost?.interrupt());

  it('streams byte for byte into a blob while the bridge memory stays flat', async () => {
    expect((await upload(blobHost, MiB, 'warm-up.bin')).status).toBe(201);
    const baseline = await blobHost.peakRss();
    const big = await upload(blobHost, FILE_BYTES, 'big.bin');
    expect(big.status).toBe(201);
    expect(big.answer.attachments[0]).toMatchObject({ size: FILE_BYTES, sha256: big.sha256 });

    const endpoint = /Azurite \(Blob and Queue\) on (http:\/\/\S+),/.exec(blobHost.output())![1]!;
    const blobs = BlobServiceClient.fromConnectionString(
      `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint};`,
    );
    const name = decodeURIComponent(
      new URL(big.answer.attachments[0]!.media).pathname.split('/').slice(3).join('/'),
    );
    const download = await blobs.getContainerClient('attachments').getBlockBlobClient(name).download();
    const hash = createHash('sha256');
    for await (const chunk of download.readableStreamBody!) hash.update(chunk as Buffer);
    expect(hash.digest('hex')).toBe(big.sha256);

    expect((await blobHost.peakRss()) - baseline).toBeLessThan(64 * MiB);
    // Azurite runs in its own process and stops with the dev host.
    expect(await blobHost.interrupt()).toBe(0);
  });
});
