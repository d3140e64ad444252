import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { packageIntoTemp, type PackagePaths } from '../scripts/package.js';
import { startEmulator, type Emulator } from '../src/emulator/server.js';
import { loadOrCreateIdentity } from '../src/emulator/tls.js';
import { startFunctionsHost, type FunctionsHost } from '../src/functions-host/host.js';
import { recordOutput, recordSecret } from './helpers/scrape.js';

/**
 * The deployable package (`npm run package`) unpacked into an empty folder and run by the local
 * Functions host, as Azure runs it; and, with host.json's routePrefix set to "", reached by the legacy
 * Cosmos DB SDK at the bridge's base URL, as a drop-in for the account (issue "Run what Azure runs").
 */
const FUNCTION_KEY = 'package-function-key-0123456789';
let paths: PackagePaths;
let emulator: Emulator;

beforeAll(async () => {
  [paths, emulator] = await Promise.all([packageIntoTemp(), startEmulator({ port: 0 })]);
  emulator.store.createDatabase({ id: 'demo' });
  emulator.store.createCollection('demo', { id: 'items', partitionKey: { paths: ['/id'], kind: 'Hash' } });
  emulator.store.createDocument('demo', 'items', { id: 'packaged' }, '["packaged"]');
  recordSecret(emulator.key, FUNCTION_KEY);
});
afterAll(async () => {
  await emulator.close();
  await rm(join(paths.root, '..'), { recursive: true, force: true });
});

function settings(queue: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    COSMOS_ENDPOINT: emulator.url,
    COSMOS_KEY: emulator.key,
    AzureWebJobsStorage: inject('storage'),
    CLEANUP_QUEUE: queue,
  };
}

async function host(
  appDir: string,
  queue: string,
  extra: Partial<Parameters<typeof startFunctionsHost>[0]> = {},
) {
  return startFunctionsHost({
    appDir,
    localSettings: false,
    env: settings(queue),
    port: 0,
    functionKey: FUNCTION_KEY,
    log: false,
    onLog: (record) => recordOutput(JSON.stringify(record)),
    ...extra,
  });
}

describe('the package, unpacked into an empty folder', () => {
  let served: FunctionsHost;
  beforeAll(async () => {
    served = await host(paths.root, 'package-cleanup');
  });
  afterAll(() => served.close());

  it('registers the app’s functions and serves an upload', async () => {
    expect(served.loadError).toBeUndefined();
    expect(served.functions.map((f) => f.name)).toEqual(
      expect.arrayContaining(['createAttachments', 'cleanup']),
    );
    const form = new FormData();
    form.append('file', new Blob(['served from the zip'], { type: 'text/plain' }), 'from-package.txt');
    const response = await fetch(`${served.url}/api/dbs/demo/colls/items/docs/packaged/attachments`, {
      method: 'POST',
      headers: { 'x-functions-key': FUNCTION_KEY, 'x-ms-documentdb-partitionkey': '["packaged"]' },
      body: form,
    });
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({ attachments: [{ id: 'from-package.txt', size: 19 }] });
  });
});

interface LegacyClient {
  requestAgent: Agent;
  defaultHeaders: Record<string, string>;
  [method: string]: unknown;
}

describe('a drop-in for the legacy Cosmos DB SDK, with routePrefix ""', () => {
  let dropIn: FunctionsHost;
  let appDir: string;
  let ca: string;
  beforeAll(async () => {
    // The same package, with host.json's route prefix emptied: the one setting a drop-in needs.
    appDir = await mkdtemp(join(tmpdir(), 'bridge-drop-in-'));
    await cp(paths.root, appDir, { recursive: true });
    const hostJson = JSON.parse(await readFile(join(appDir, 'host.json'), 'utf8')) as {
      extensions: { http: { routePrefix: string } };
    };
    hostJson.extensions.http.routePrefix = '';
    await writeFile(join(appDir, 'host.json'), JSON.stringify(hostJson));
    const identity = await loadOrCreateIdentity(await mkdtemp(join(tmpdir(), 'bridge-tls-')));
    ca = identity.cert;
    // The SDK insists on TLS 1.0 (Azure's front end takes TLS 1.2 and newer: see the README).
    dropIn = await host(appDir, 'drop-in-cleanup', {
      https: { cert: identity.cert, key: identity.key, minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' },
    });
  });
  afterAll(async () => {
    await dropIn.close();
    await rm(appDir, { recursive: true, force: true });
  });

  it('creates attachments through the bridge by pointing the SDK at its base URL, the function key in its default headers', async () => {
    expect(dropIn.routePrefix).toBe('');
    const documentdb = createRequire(import.meta.url)('documentdb') as {
      DocumentClient: new (host: string, auth: { masterKey: string }, policy?: unknown) => LegacyClient;
      DocumentBase: { ConnectionPolicy: new () => Record<string, unknown> };
    };
    const policy = new documentdb.DocumentBase.ConnectionPolicy();
    // The bridge is no account: there are no regions to discover.
    policy.EnableEndpointDiscovery = false;
    // The SDK signs with whatever key it holds; the bridge never sees (nor needs) the account's.
    const client = new documentdb.DocumentClient(
      dropIn.url.replace('127.0.0.1', 'localhost'),
      { masterKey: 'bm90LXRoZS1rZXk=' },
      policy,
    );
    client.requestAgent = new Agent({ keepAlive: true, ca, ciphers: 'DEFAULT:@SECLEVEL=0' });
    client.defaultHeaders['x-functions-key'] = FUNCTION_KEY;
    const call = (method: string, ...args: unknown[]) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        (client[method] as (...a: unknown[]) => void).apply(client, [
          ...args,
          (err: { code: number; body: string } | undefined, result: Record<string, unknown>) =>
            err ? reject(Object.assign(new Error(`${err.code}: ${err.body}`), err)) : resolve(result),
        ]);
      });
    const document = 'dbs/demo/colls/items/docs/packaged';
    const media = await call(
      'createAttachmentAndUploadMedia',
      document,
      Readable.from([Buffer.from('via the legacy SDK')]),
      {
        slug: 'legacy.txt',
        contentType: 'text/plain',
        partitionKey: 'packaged',
      },
    );
    expect(media).toMatchObject({ id: 'legacy.txt', contentType: 'text/plain', size: 18 });
    const metadata = await call(
      'createAttachment',
      document,
      { id: 'legacy-link', contentType: 'image/png', media: 'https://cdn.example/legacy.png' },
      { partitionKey: 'packaged' },
    );
    expect(metadata).toMatchObject({ id: 'legacy-link', media: 'https://cdn.example/legacy.png' });
    // Without the key, the host refuses it.
    delete client.defaultHeaders['x-functions-key'];
    await expect(
      call(
        'createAttachment',
        document,
        { id: 'x', contentType: 'image/png', media: 'https://x/y' },
        { partitionKey: 'packaged' },
      ),
    ).rejects.toMatchObject({ code: 401 });
  });
});
