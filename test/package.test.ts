import { builtinModules } from 'node:module';
import { readFile, readdir, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startAzurite, type Azurite } from '../src/devhost/azurite.js';
import { startEmulator, type Emulator } from '../src/emulator/server.js';
import {
  BUNDLE_MAIN,
  REPO_ROOT,
  WORKER_PROVIDED,
  buildPackage,
  packageIntoTemp,
  type BuiltPackage,
  type PackagePaths,
} from '../scripts/package.js';
import { runProbe, type ProbeRequest, type ProbeResult } from '../scripts/package-probe.js';
import { recordOutput, recordSecret } from './helpers/scrape.js';

/**
 * `npm run package` builds the zip Azure runs. These tests unpack it into an empty folder, check
 * nothing else came along and nothing is missing, then load it in a fresh Node process with a
 * stand-in for the Functions worker's `@azure/functions-core` and serve uploads from it.
 */
let paths: PackagePaths;
let built: BuiltPackage;
let emulator: Emulator;
let azurite: Azurite;

beforeAll(async () => {
  [paths, built, emulator, azurite] = await Promise.all([
    packageIntoTemp(),
    buildPackage(),
    startEmulator({ port: 0 }),
    startAzurite(0),
  ]);
  emulator.store.createDatabase({ id: 'demo' });
  emulator.store.createCollection('demo', { id: 'items', partitionKey: { paths: ['/id'], kind: 'Hash' } });
  emulator.store.createDocument('demo', 'items', { id: 'packaged' }, '["packaged"]');
  recordSecret(emulator.key);
});
afterAll(async () => {
  await Promise.all([emulator?.close(), azurite?.close()]);
  if (paths) await rm(join(paths.root, '..'), { recursive: true, force: true });
});

const isBuiltin = (specifier: string) => specifier.startsWith('node:') || builtinModules.includes(specifier);

/** Every file under `folder`, as package paths. */
async function listFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(folder, join(entry.parentPath, entry.name)).split('\\').join('/'))
    .sort();
}

/** Outputs of the build that hold code from a package (e.g. `jose`), as package paths. */
function outputsWith(packageName: string): string[] {
  return Object.entries(built.metafile.outputs)
    .filter(([, output]) =>
      Object.keys(output.inputs).some((input) => input.includes(`node_modules/${packageName}/`)),
    )
    .map(([path]) => relative('.package-out', path));
}

/** The outputs the entry loads before it runs: its static imports, followed transitively. */
function loadedAtStart(): Set<string> {
  const byPath = new Map(
    Object.entries(built.metafile.outputs).map(([path, out]) => [relative('.package-out', path), out]),
  );
  const seen = new Set<string>();
  const visit = (path: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    for (const imported of byPath.get(path)?.imports ?? []) {
      if (imported.kind === 'import-statement' && !imported.external)
        visit(relative('.package-out', imported.path));
    }
  };
  visit(BUNDLE_MAIN);
  return seen;
}

const boundary = 'pkg';
function upload(doc: string, filename: string, text: string): ProbeRequest {
  return {
    functionName: 'createAttachments',
    url: `http://localhost:7071/api/dbs/demo/colls/items/docs/${doc}/attachments`,
    headers: {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'x-ms-documentdb-partitionkey': JSON.stringify([doc]),
    },
    body:
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n` +
      `Content-Type: text/plain\r\n\r\n${text}\r\n--${boundary}--\r\n`,
  };
}

function recorded(result: ProbeResult): ProbeResult {
  recordOutput(result.output);
  if (result.answer) recordOutput(result.answer.body);
  return result;
}

describe('the deployment package', () => {
  it('holds host.json, a package.json naming the bundle, the bundle and its chunks, and nothing else', async () => {
    expect(await listFiles(paths.root)).toEqual(paths.files);
    const others = paths.files.filter((file) => !/^chunks\/[\w-]+\.js$/.test(file));
    expect(others).toEqual(['host.json', BUNDLE_MAIN, 'package.json']);
    expect(paths.files.filter((file) => file.startsWith('chunks/')).length).toBeGreaterThan(0);
    expect(await readFile(join(paths.root, 'host.json'), 'utf8')).toBe(
      await readFile(join(REPO_ROOT, 'host.json'), 'utf8'),
    );
    const manifest = JSON.parse(await readFile(join(paths.root, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(manifest).toMatchObject({ type: 'module', main: BUNDLE_MAIN });
    expect(manifest).not.toHaveProperty('dependencies');
    expect(paths.main).toBe(join(paths.root, BUNDLE_MAIN));
  });

  it('builds the same bytes twice, so a deployment changes only when the code does', async () => {
    expect(Buffer.compare(Buffer.from(built.zip), await readFile(paths.zipPath))).toBe(0);
  });

  it('resolves every import inside the folder; only @azure/functions-core is left to the worker', async () => {
    // Bundling the unpacked files again fails on any import that does not resolve there (the temporary
    // folder has no node_modules); dynamic imports are followed too.
    const again = await build({
      absWorkingDir: paths.root,
      entryPoints: [
        paths.main,
        ...paths.files.filter((f) => f.startsWith('chunks/')).map((f) => join(paths.root, f)),
      ],
      bundle: true,
      platform: 'node',
      format: 'esm',
      splitting: true,
      outdir: join(paths.root, 'unused'),
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const externals = new Set<string>();
    for (const output of Object.values(again.metafile.outputs)) {
      for (const imported of output.imports) if (imported.external) externals.add(imported.path);
    }
    expect([...externals].filter((specifier) => !isBuiltin(specifier))).toEqual([]);
    // CommonJS code in the bundle asks esbuild's require shim, which the static pass above does not see.
    const required = new Set<string>();
    for (const file of paths.files.filter((f) => f.endsWith('.js'))) {
      const code = await readFile(join(paths.root, file), 'utf8');
      for (const match of code.matchAll(/__require\("([^"]+)"\)/g)) required.add(match[1]!);
    }
    expect([...required].filter((specifier) => !isBuiltin(specifier))).toEqual([WORKER_PROVIDED]);
  });

  it('keeps token checks, Blob Storage and the identity SDK out of what loads at start', () => {
    const atStart = loadedAtStart();
    for (const lazy of ['jose', '@azure/storage-blob', '@azure/storage-queue', '@azure/identity']) {
      const outputs = outputsWith(lazy);
      expect(outputs.length, lazy).toBeGreaterThan(0);
      for (const output of outputs) expect(atStart.has(output), `${lazy} in ${output}`).toBe(false);
    }
    expect(outputsWith('undici').every((output) => atStart.has(output))).toBe(true);
  });

  it('loads in an empty folder, registers the app and stores an upload as a managed attachment', async () => {
    const result = recorded(
      await runProbe({
        main: paths.main,
        env: {
          COSMOS_CONNECTION_STRING: `AccountEndpoint=${emulator.url}/;AccountKey=${emulator.key};`,
          AzureWebJobsStorage: inject('storage'),
        },
        request: upload('packaged', 'from-package.txt', 'served from the zip'),
        // Then every chunk, the lazy ones included, so none fails to load when first needed.
        importAfter: paths.files.filter((f) => f.startsWith('chunks/')).map((f) => join(paths.root, f)),
      }),
    );
    expect(result.error).toBeUndefined();
    expect(result.coreRequests).toBeGreaterThan(0);
    // The HTTP routes at least; every function the app registers comes with its trigger.
    expect(result.registrations.map((r) => r.name)).toEqual(
      expect.arrayContaining(['createAttachments', 'webhookAttachments']),
    );
    for (const registration of result.registrations)
      expect(registration.trigger, registration.name).toBeDefined();
    expect(result.registrations.find((r) => r.name === 'createAttachments')?.trigger).toMatchObject({
      type: 'httpTrigger',
      authLevel: 'function',
      methods: ['POST'],
      route: 'dbs/{db}/colls/{coll}/docs/{doc}/attachments',
    });
    expect(result.answer?.status).toBe(201);
    expect(JSON.parse(result.answer!.body)).toMatchObject({
      attachments: [{ id: 'from-package.txt', contentType: 'text/plain', size: 19 }],
    });
  });

  it('stores an upload in Blob Storage from the lazily loaded chunk', async () => {
    emulator.store.createDocument('demo', 'items', { id: 'packaged-blob' }, '["packaged-blob"]');
    const result = recorded(
      await runProbe({
        main: paths.main,
        env: {
          COSMOS_CONNECTION_STRING: `AccountEndpoint=${emulator.url}/;AccountKey=${emulator.key};`,
          MEDIA_STORE: 'blob',
          BLOB_CONNECTION_STRING: azurite.connectionString,
          AzureWebJobsStorage: inject('storage'),
        },
        request: upload('packaged-blob', 'to-blob.txt', 'bytes in a blob'),
      }),
    );
    expect(result.error).toBeUndefined();
    expect(result.answer?.status).toBe(201);
    const [attachment] = (
      JSON.parse(result.answer!.body) as { attachments: { media: string; size: number }[] }
    ).attachments;
    expect(attachment?.size).toBe(15);
    expect(attachment?.media.startsWith(`${azurite.blobEndpoint}/attachments/`)).toBe(true);
    const blobName = decodeURIComponent(
      attachment!.media.slice(`${azurite.blobEndpoint}/attachments/`.length),
    );
    const blob = BlobServiceClient.fromConnectionString(azurite.connectionString)
      .getContainerClient('attachments')
      .getBlobClient(blobName);
    expect((await blob.downloadToBuffer()).toString()).toBe('bytes in a blob');
  });
});
