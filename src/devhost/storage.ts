import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AZURITE_ACCOUNT, AZURITE_KEY } from './azurite.js';

/** Azurite's Blob and Queue services, as the app's storage account (`AzureWebJobsStorage`) locally. */
export interface LocalStorage {
  readonly blobEndpoint: string;
  readonly queueEndpoint: string;
  /** A connection string for both services, with the well-known development account. */
  readonly connectionString: string;
  close(): Promise<void>;
}

const LISTENING = /Azurite (Blob|Queue) service is successfully listening at (http:\/\/[\d.]+:\d+)/g;

/**
 * Azurite (all services) from the npm package in its own process, on loopback with free ports unless
 * given, telemetry off, its data in a new temporary folder that goes when it stops.
 */
export async function startLocalStorage(
  ports: { blob?: number; queue?: number } = {},
): Promise<LocalStorage> {
  const location = await mkdtemp(join(tmpdir(), 'azurite-'));
  const entry = createRequire(import.meta.url).resolve('azurite/dist/src/azurite.js');
  const args = [
    entry,
    ...['--blobHost', '127.0.0.1', '--blobPort', String(ports.blob ?? 0)],
    ...['--queueHost', '127.0.0.1', '--queuePort', String(ports.queue ?? 0)],
    ...['--tableHost', '127.0.0.1', '--tablePort', '0'],
    ...['--location', location, '--disableTelemetry', '--skipApiVersionCheck', '--loose'],
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const origins = await new Promise<Record<string, string>>((resolve, reject) => {
    const found: Record<string, string> = {};
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      for (const match of output.matchAll(LISTENING)) found[match[1]!] = match[2]!;
      if (found.Blob && found.Queue) resolve(found);
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) =>
      reject(new Error(`Azurite exited (${code}) before listening: ${output.trim()}`)),
    );
  }).catch(async (err: unknown) => {
    await rm(location, { recursive: true, force: true });
    throw err;
  });
  const blobEndpoint = `${origins.Blob}/${AZURITE_ACCOUNT}`;
  const queueEndpoint = `${origins.Queue}/${AZURITE_ACCOUNT}`;
  return {
    blobEndpoint,
    queueEndpoint,
    connectionString:
      `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};` +
      `BlobEndpoint=${blobEndpoint};QueueEndpoint=${queueEndpoint};`,
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      await rm(location, { recursive: true, force: true });
    },
  };
}
