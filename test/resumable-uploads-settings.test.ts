import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ownerOf, sameOwner } from '../src/features/uploads/identity.js';
import { attachmentIdFrom, uniqueIdFor } from '../src/features/uploads/ids.js';
import { parseChecksum, parseUploadMetadata } from '../src/features/uploads/protocol.js';
import { blockId, recordedBlocks } from '../src/features/uploads/state.js';
import { loadSettings, SettingsError } from '../src/settings.js';

const KEY = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';
const BASE = {
  COSMOS_ENDPOINT: 'https://a',
  COSMOS_KEY: KEY,
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
};

function refused(env: Record<string, string>): string {
  try {
    loadSettings({ ...BASE, ...env });
  } catch (err) {
    expect(err).toBeInstanceOf(SettingsError);
    return (err as Error).message;
  }
  throw new Error('expected a SettingsError');
}

describe('resumable upload settings', () => {
  it('has defaults: 5 GiB, 24 h, bridge-uploads, staging in the app storage account', () => {
    const { uploads } = loadSettings(BASE);
    expect(uploads).toMatchObject({
      maxUploadBytes: 5 * 1024 ** 3,
      maxPatchBytes: 104_857_600,
      expirySeconds: 86_400,
      container: 'bridge-uploads',
      storage: { connectionString: 'UseDevelopmentStorage=true' },
    });
  });

  it('stages in the blob account in blob mode, and in the identity-based account otherwise', () => {
    const blob = loadSettings({
      ...BASE,
      MEDIA_STORE: 'blob',
      BLOB_ACCOUNT_URL: 'https://acct.blob.core.windows.net',
    });
    expect(blob.uploads.storage?.accountUrl?.href).toBe('https://acct.blob.core.windows.net/');
    const identity = loadSettings({
      COSMOS_ENDPOINT: 'https://a',
      COSMOS_KEY: KEY,
      AzureWebJobsStorage__queueServiceUri: 'https://st1.queue.core.windows.net/',
      AzureWebJobsStorage__blobServiceUri: 'https://st1.blob.core.windows.net/',
    });
    expect(identity.uploads.storage?.accountUrl?.href).toBe('https://st1.blob.core.windows.net/');
    // A queue endpoint alone: the app starts; the resumable routes say what is missing.
    const queueOnly = loadSettings({
      COSMOS_ENDPOINT: 'https://a',
      COSMOS_KEY: KEY,
      AzureWebJobsStorage__queueServiceUri: 'https://st1.queue.core.windows.net/',
    });
    expect(queueOnly.uploads.storage).toBeUndefined();
  });

  it('refuses bad values, naming the setting and never the value', () => {
    expect(refused({ UPLOAD_EXPIRY_SECONDS: '604801' })).toMatch(/UPLOAD_EXPIRY_SECONDS.*7 days/);
    expect(refused({ UPLOADS_CONTAINER: 'Bad_Name' })).toMatch(/UPLOADS_CONTAINER/);
    expect(refused({ MAX_UPLOAD_BYTES: '0' })).toMatch(/MAX_UPLOAD_BYTES/);
    const secret = refused({ UPLOADS_SECRET: 'c2hvcnQ=' });
    expect(secret).toMatch(/UPLOADS_SECRET/);
    expect(secret).not.toContain('c2hvcnQ=');
    expect(
      refused({
        MEDIA_STORE: 'blob',
        BLOB_CONNECTION_STRING: 'UseDevelopmentStorage=true',
        UPLOADS_CONTAINER: 'attachments',
      }),
    ).toMatch(/UPLOADS_CONTAINER must differ from BLOB_CONTAINER/);
  });

  it('hashes the owner with the key it is given, never storing the function key', () => {
    const secret = Buffer.alloc(32, 7).toString('base64');
    const { uploads } = loadSettings({ ...BASE, UPLOADS_SECRET: secret });
    const request = new Request('http://h/api/uploads/x', { headers: { 'x-functions-key': 'key-one' } });
    const owner = ownerOf(request, new URL(request.url), undefined, uploads.ownerKey);
    // An independent reference: HMAC-SHA256 of "key\n<presented key>".
    expect(owner).toBe(createHmac('sha256', Buffer.alloc(32, 7)).update('key\nkey-one').digest('hex'));
    expect(owner).not.toContain('key-one');
    const other = new Request('http://h/api/uploads/x?code=key-two');
    expect(sameOwner(owner, ownerOf(other, new URL(other.url), undefined, uploads.ownerKey))).toBe(false);
    expect(sameOwner(owner, owner)).toBe(true);
  });
});

describe('tus header parsing', () => {
  it('reads Upload-Metadata as the spec writes it, and refuses what it forbids', () => {
    const pairs = parseUploadMetadata('filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential');
    expect(pairs.get('filename')?.toString()).toBe('world_domination_plan.pdf');
    expect(pairs.get('is_confidential')?.length).toBe(0);
    expect(() => parseUploadMetadata('a YQ==,a Yg==')).toThrow(/twice/);
    expect(() => parseUploadMetadata('a not-base64!')).toThrow(/pairs/);
    expect(() => parseUploadMetadata('a YQ')).toThrow(/base64/);
  });

  it('reads Upload-Checksum, refusing algorithms it does not offer', () => {
    expect(parseChecksum('sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=')?.digest.toString('hex')).toBe(
      '2aae6c35c94fcfb415dbe95f408b9ce91ee846ed',
    );
    expect(() => parseChecksum('crc32 AAAA')).toThrow(/not supported/);
  });

  it('takes the id from the file name, or makes a unique one', () => {
    const meta = (pairs: Record<string, string>) =>
      new Map(Object.entries(pairs).map(([key, value]) => [key, Buffer.from(value)]));
    expect(attachmentIdFrom(meta({ filename: 'dir/photo.jpg' }))).toEqual({
      id: 'photo.jpg',
      properties: undefined,
      checkTaken: true,
    });
    const unique = attachmentIdFrom(meta({ filename: 'a?b#c.txt', uniqueId: '' }));
    expect(unique.id).toMatch(/^[A-Za-z0-9_-]{8}-a_b_c\.txt$/);
    expect(unique.properties).toEqual({ originalName: 'a?b#c.txt' });
    expect(() => attachmentIdFrom(meta({}))).toThrow(/filename/);
    expect(() => attachmentIdFrom(meta({ filename: 'x', upsert: 'true' }))).toThrow(/upsert/);
    expect([...uniqueIdFor('x'.repeat(400))].length).toBe(255);
  });

  it('names blocks with ids of one length, in recorded order', () => {
    const ids = recordedBlocks([
      { tag: '0011223344556677', blocks: 2, bytes: 10 },
      { tag: '8899aabbccddeeff', blocks: 1, bytes: 3 },
    ]);
    expect(ids).toEqual([
      blockId('0011223344556677', 0),
      blockId('0011223344556677', 1),
      blockId('8899aabbccddeeff', 0),
    ]);
    expect(new Set(ids.map((id) => id.length))).toEqual(new Set([16]));
  });
});
