import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLocalSettings } from '../src/devhost/local-settings.js';
import { DEFAULTS, SettingsError, hasCosmosSettings, loadSettings } from '../src/settings.js';

const KEY = 'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';

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
    [
      { COSMOS_ENDPOINT: 'https://a', COSMOS_KEY: KEY, MAX_PART_BYTES: '12MB' },
      /MAX_PART_BYTES must be a whole number/,
    ],
    [
      { COSMOS_ENDPOINT: 'https://a', COSMOS_KEY: KEY, UPSTREAM_TIMEOUT_MS: '0' },
      /UPSTREAM_TIMEOUT_MS must be/,
    ],
  ])('fails at start naming the setting: %j', (env, message) => {
    expect(failure(env as Record<string, string>).message).toMatch(message);
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
    const settings = loadSettings({ COSMOS_ENDPOINT: 'https://a', COSMOS_KEY: KEY });
    expect(JSON.stringify(settings)).not.toContain(KEY.slice(0, 20));
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
