import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLocalSettings } from '../src/devhost/local-settings.js';
import { DEFAULTS, SettingsError, hasCosmosSettings, loadSettings } from '../src/settings.js';

const KEY = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';
const STORAGE = { AzureWebJobsStorage: 'UseDevelopmentStorage=true' };
const BASE = { COSMOS_ENDPOINT: 'https://a', COSMOS_KEY: KEY, ...STORAGE };

function failure(env: Record<string, string>): SettingsError {
  try {
    loadSettings(env);
  } catch (err) {
    expect(err).toBeInstanceOf(SettingsError);
    return err as SettingsError;
  }
  throw new Error('expected a SettingsError');
}

describe('settings', () => {
  it('reads a portal connection string, names in any case', () => {
    const settings = loadSettings({
      COSMOS_CONNECTION_STRING: `accountendpoint=https://acct.documents.azure.com:443/;AccountKey=${KEY};`,
      ...STORAGE,
    });
    expect(settings.cosmos.endpoint.origin).toBe('https://acct.documents.azure.com');
    expect(settings.cosmos.key.export().toString('base64')).toBe(KEY);
    expect(settings.limits.maxPartBytes).toBe(DEFAULTS.maxPartBytes);
  });

  it('reads endpoint and key, and allows http:// for emulators', () => {
    const settings = loadSettings({
      COSMOS_ENDPOINT: 'http://127.0.0.1:8081',
      COSMOS_KEY: KEY,
      MAX_PART_BYTES: '1024',
      ...STORAGE,
    });
    expect(settings.cosmos.endpoint.href).toBe('http://127.0.0.1:8081/');
    expect(settings.limits.maxPartBytes).toBe(1024);
  });

  it.each([
    [{}, /COSMOS_CONNECTION_STRING, or COSMOS_ENDPOINT and COSMOS_KEY/],
    [{ COSMOS_ENDPOINT: 'https://a.documents.azure.com' }, /COSMOS_KEY is missing/],
    [{ COSMOS_KEY: KEY }, /COSMOS_ENDPOINT is missing/],
    [{ COSMOS_ENDPOINT: 'not a url', COSMOS_KEY: KEY }, /COSMOS_ENDPOINT is not a valid URL/],
    [{ COSMOS_ENDPOINT: 'ftp://a', COSMOS_KEY: KEY }, /COSMOS_ENDPOINT must be an http/],
    [{ COSMOS_ENDPOINT: 'https://a/dbs', COSMOS_KEY: KEY }, /COSMOS_ENDPOINT must be the account's origin/],
    [{ COSMOS_ENDPOINT: 'https://a', COSMOS_KEY: 'not base64!!' }, /COSMOS_KEY is not a base64 account key/],
    [
      { COSMOS_CONNECTION_STRING: 'AccountKey=abc' },
      /COSMOS_CONNECTION_STRING .*(AccountEndpoint|malformed)/,
    ],
    [{ COSMOS_CONNECTION_STRING: 'garbage' }, /COSMOS_CONNECTION_STRING is malformed/],
    [{ COSMOS_CONNECTION_STRING: 'AccountEndpoint=https://a/;' }, /no AccountKey/],
    [
      { COSMOS_CONNECTION_STRING: `AccountEndpoint=https://a/;AccountKey=${KEY}`, COSMOS_KEY: KEY },
      /either COSMOS_CONNECTION_STRING or COSMOS_ENDPOINT/,
    ],
    [{ ...BASE, MAX_PART_BYTES: '12MB' }, /MAX_PART_BYTES must be a whole number/],
    [{ ...BASE, UPSTREAM_TIMEOUT_MS: '0' }, /UPSTREAM_TIMEOUT_MS must be/],
    [{ ...BASE, AUTH_JWT_ISSUER: 'https://login.example/' }, /AUTH_JWT_AUDIENCE must be set/],
    [
      { ...BASE, AUTH_JWT_ISSUER: 'http://login.example/', AUTH_JWT_AUDIENCE: 'a', ALLOWED_TARGETS: '*/*' },
      /AUTH_JWT_ISSUER must be an https/,
    ],
    [
      { ...BASE, AUTH_JWT_ISSUER: 'https://login.example/', AUTH_JWT_AUDIENCE: 'a' },
      /ALLOWED_TARGETS must be set/,
    ],
    [{ ...BASE, AUTH_EASY_AUTH: 'true' }, /ALLOWED_TARGETS must be set/],
    [{ ...BASE, AUTH_EASY_AUTH: 'maybe' }, /AUTH_EASY_AUTH must be true or false/],
    [{ ...BASE, AUTH_PARTITION_CLAIM: 'sub' }, /AUTH_PARTITION_CLAIM needs end-user sign-in/],
    [{ ...BASE, AUTH_JWT_AUDIENCE: 'a' }, /need AUTH_JWT_ISSUER/],
    [{ ...BASE, ALLOWED_TARGETS: 'demo' }, /ALLOWED_TARGETS: entry 1 is not a database\/collection pattern/],
    [
      { ...BASE, ALLOWED_CONTENT_TYPES: 'image/*, images' },
      /ALLOWED_CONTENT_TYPES: entry 2 is not a content type pattern/,
    ],
    [{ COSMOS_ENDPOINT: 'https://a', COSMOS_KEY: KEY }, /AzureWebJobsStorage is not set/],
    [
      { ...BASE, AzureWebJobsStorage: 'not-a-connection-string' },
      /AzureWebJobsStorage is not a storage connection string/,
    ],
    [
      { ...BASE, AzureWebJobsStorage: '', AzureWebJobsStorage__accountName: 'Bad Name' },
      /AzureWebJobsStorage__accountName is not/,
    ],
    [{ ...BASE, CLEANUP_QUEUE: 'Bad_Queue' }, /CLEANUP_QUEUE is not a valid queue name/],
    [{ ...BASE, MIN_UPLOAD_BYTES_PER_SECOND: 'fast' }, /MIN_UPLOAD_BYTES_PER_SECOND must be a whole number/],
    [{ ...BASE, MEDIA_STORE: 'disk' }, /MEDIA_STORE must be cosmos or blob/],
    [{ ...BASE, WEBHOOK_SECRET: 'not-a-secret' }, /WEBHOOK_SECRET must hold/],
    [{ ...BASE, WEBHOOK_SECRET: 'whsec_c2hvcnQ=' }, /WEBHOOK_SECRET must hold/],
    [{ ...BASE, COSMOS_KEY_SECONDARY: 'nope' }, /COSMOS_KEY_SECONDARY is not a base64 account key/],
    [{ ...BASE, REPLAY_BUFFER_BYTES: '-1' }, /REPLAY_BUFFER_BYTES must be a whole number/],
  ])('fails at start naming the setting: %j', (env, message) => {
    const { message: said } = failure(env);
    expect(said).toMatch(message);
    // Names the setting, never its value (the values here are no secrets, but a message never says).
    for (const [name, value] of Object.entries(env)) {
      if (value.length > 3 && !['COSMOS_ENDPOINT', 'AzureWebJobsStorage'].includes(name))
        expect(said).not.toContain(value);
    }
  });

  it('never prints the key, even a malformed one', () => {
    const secret = 'Zm9vYmFyYmF6cXV4c2VjcmV0!!';
    const envs: Record<string, string>[] = [
      { COSMOS_ENDPOINT: 'https://a', COSMOS_KEY: secret },
      { COSMOS_CONNECTION_STRING: `AccountEndpoint=nope;AccountKey=${secret}` },
      { COSMOS_CONNECTION_STRING: `AccountEndpoint=https://a/;AccountKey=${secret}` },
    ];
    for (const env of envs) {
      const err = failure(env);
      expect(err.message).not.toContain(secret);
      expect(String(err.stack)).not.toContain(secret);
    }
    const settings = loadSettings(BASE);
    expect(JSON.stringify(settings)).not.toContain(KEY.slice(0, 20));
  });

  it('reads the access settings: targets, content types, sign-in and webhook secrets', () => {
    const settings = loadSettings({
      ...BASE,
      COSMOS_KEY_SECONDARY: KEY,
      ALLOWED_TARGETS: 'app/photos, app-*/uploads',
      ALLOWED_CONTENT_TYPES: 'image/*,application/pdf',
      AUTH_JWT_ISSUER: 'https://login.example/tenant/v2.0',
      AUTH_JWT_AUDIENCE: 'api://bridge',
      AUTH_PARTITION_CLAIM: 'sub',
      WEBHOOK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_c2VjcmV0LXNlY29uZC0xMjM0NTY=',
    });
    expect(settings.cosmos.secondaryKey).toBeDefined();
    expect(settings.allowedTargets).toHaveLength(2);
    expect(settings.auth).toMatchObject({
      jwt: { issuer: 'https://login.example/tenant/v2.0', audience: 'api://bridge' },
      partitionClaim: 'sub',
    });
    expect(settings.webhookSecrets).toHaveLength(2);
    expect(settings.limits.allowedContentTypes).toHaveLength(2);
  });

  it('treats blank settings as unset', () => {
    expect(hasCosmosSettings({ COSMOS_CONNECTION_STRING: '  ', COSMOS_KEY: '' })).toBe(false);
    expect(hasCosmosSettings({ COSMOS_ENDPOINT: 'https://a' })).toBe(true);
  });
});

describe('local.settings.json', () => {
  it('reads Values like Core Tools, and no file is no settings', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'local-settings-'));
    expect(await readLocalSettings(join(dir, 'missing.json'))).toEqual({});
    const path = join(dir, 'local.settings.json');
    await writeFile(path, JSON.stringify({ IsEncrypted: false, Values: { MAX_PART_BYTES: '10' } }));
    expect(await readLocalSettings(path)).toEqual({ MAX_PART_BYTES: '10' });
  });

  it('names the file when it is malformed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'local-settings-'));
    const path = join(dir, 'local.settings.json');
    await writeFile(path, '{ nope');
    await expect(readLocalSettings(path)).rejects.toThrow(/local\.settings\.json is not valid JSON/);
    await writeFile(path, JSON.stringify({ Values: { PORT: 7071 } }));
    await expect(readLocalSettings(path)).rejects.toThrow(/PORT must be a string/);
  });
});

describe('host.json', () => {
  it('gives the clean-up queue the attempts the app counts on', async () => {
    const { readFile } = await import('node:fs/promises');
    const { MAX_DEQUEUE_COUNT } = await import('../src/bridge.js');
    const host = JSON.parse(await readFile('host.json', 'utf8')) as {
      extensions: { queues: { maxDequeueCount: number } };
    };
    expect(host.extensions.queues.maxDequeueCount).toBe(MAX_DEQUEUE_COUNT);
  });
});
