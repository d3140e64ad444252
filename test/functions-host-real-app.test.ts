// This app's real entry point (dist/functions/index.js, built by the global setup) under the local
// Functions host: a multipart upload goes through the host, the worker and `@azure/functions` into
// the embedded Cosmos DB emulator.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startEmulator, type Emulator } from '../src/emulator/server.js';
import { startFixtureHost, type TestHost } from './helpers/functions-host.js';
import { recordSecret } from './helpers/scrape.js';

const APP_DIR = fileURLToPath(new URL('..', import.meta.url));
const FUNCTION_KEY = 'real-app-function-key-0123456789';

let emulator: Emulator;
let host: TestHost;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  recordSecret(emulator.key);
  emulator.store.createDatabase({ id: 'demo' });
  emulator.store.createCollection('demo', { id: 'items', partitionKey: { paths: ['/id'], kind: 'Hash' } });
  emulator.store.createDocument('demo', 'items', { id: 'welcome' }, '["welcome"]');
  host = await startFixtureHost(APP_DIR, {
    // A developer's local.settings.json must not change what this test runs.
    localSettings: false,
    env: {
      COSMOS_ENDPOINT: emulator.url,
      COSMOS_KEY: emulator.key,
      AzureWebJobsStorage: inject('storage'),
      CLEANUP_QUEUE: 'real-app-cleanup',
    },
    functionKey: FUNCTION_KEY,
  });
});
afterAll(async () => {
  await host?.close();
  await emulator?.close();
});

describe("the app's own entry point", () => {
  it('registers its routes with the host', () => {
    expect(host.loadError).toBeUndefined();
    expect(host.functions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          name: 'createAttachments',
          route: 'api/dbs/{db}/colls/{coll}/docs/{doc}/attachments',
          methods: ['POST'],
          authLevel: 'function',
        }),
        expect.objectContaining({ name: 'webhookAttachments', authLevel: 'anonymous' }),
      ]),
    );
  });

  it('stores a multipart upload in the emulator through the host and the worker', async () => {
    const form = new FormData();
    form.append('first', new Blob(['hello from the host'], { type: 'text/plain' }), 'through-host.txt');
    form.append(
      'second',
      new Blob([new Uint8Array(64 * 1024).fill(7)], { type: 'application/octet-stream' }),
      'bytes.bin',
    );
    const url = `${host.url}/api/dbs/demo/colls/items/docs/welcome/attachments`;
    const refused = await fetch(url, { method: 'POST', body: form });
    expect(refused.status).toBe(401);
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'x-functions-key': FUNCTION_KEY, 'x-ms-documentdb-partitionkey': '["welcome"]' },
      body: form,
    });
    expect(response.status).toBe(201);
    const { attachments } = (await response.json()) as { attachments: Record<string, unknown>[] };
    expect(attachments).toMatchObject([
      { id: 'through-host.txt', contentType: 'text/plain', size: 19 },
      { id: 'bytes.bin', contentType: 'application/octet-stream', size: 64 * 1024 },
    ]);
    const executed = await host.waitForLog((r) =>
      r.message.startsWith("Executed 'Functions.createAttachments' (Succeeded"),
    );
    expect(executed.invocationId).toBeDefined();
  });

  it('registers its routes without Cosmos DB settings, and answers 500 naming the missing setting', async () => {
    const bare = await startFixtureHost(APP_DIR, { localSettings: false, env: {} });
    try {
      expect(bare.loadError).toBeUndefined();
      expect(bare.functions.map((f) => f.name)).toContain('createAttachments');
      const answer = await fetch(`${bare.url}/api/dbs/demo/colls/items/docs/welcome/attachments`, {
        method: 'POST',
        headers: { 'x-functions-key': bare.functionKey },
      });
      expect(answer.status).toBe(500);
      const body = (await answer.json()) as { code: string; message: string };
      expect(body.code).toBe('ConfigurationError');
      expect(body.message).toMatch(/COSMOS_CONNECTION_STRING/);
      const logged = await bare.waitForLog((r) => r.level === 'error' && r.message.includes('misconfigured'));
      expect(logged.message).toMatch(/COSMOS_CONNECTION_STRING/);
    } finally {
      await bare.close();
    }
  });
});
