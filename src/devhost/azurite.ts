import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Azurite's well-known development account: documented by Microsoft, not a secret. */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
export const AZURITE_PORT = 10000;

export interface Azurite {
  /** e.g. `http://127.0.0.1:10000/devstoreaccount1` */
  readonly blobEndpoint: string;
  readonly connectionString: string;
  close(): Promise<void>;
}

/** Azurite's Blob service script in the npm package (resolved only when Azurite is started). */
export function azuriteEntry(): string {
  return createRequire(import.meta.url).resolve('azurite/dist/src/blob/main.js');
}

/** Arguments for that script: on loopback, telemetry off, its data in `location`. */
export function azuriteArgs(port: number, location: string): string[] {
  return [
    '--blobHost',
    '127.0.0.1',
    '--blobPort',
    String(port),
    '--location',
    location,
    '--silent',
    '--disableTelemetry',
    '--skipApiVersionCheck',
    '--loose',
  ];
}

/** The line Azurite prints once it listens; group 1 is its origin. */
export const AZURITE_LISTENING = /successfully listens on (http:\/\/[\d.]+:\d+)/;

/** A connection string for the well-known account on the Azurite at `origin`. */
export function azuriteConnectionString(origin: string): string {
  return (
    `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};` +
    `BlobEndpoint=${origin}/${AZURITE_ACCOUNT};`
  );
}

/**
 * Azurite's Blob service from the npm package, in its own process: on loopback, telemetry off, its
 * data in a new temporary folder that goes when it stops.
 */
export async function startAzurite(port: number = AZURITE_PORT): Promise<Azurite> {
  const location = await mkdtemp(join(tmpdir(), 'azurite-'));
  const child = spawn(process.execPath, [azuriteEntry(), ...azuriteArgs(port, location)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const listening = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = AZURITE_LISTENING.exec(output);
      if (match) {
        child.stdout.off('data', onData);
        resolve(match[1]!);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) =>
      reject(new Error(`Azurite exited (${code}) before listening: ${output.trim()}`)),
    );
  }).catch(async (err: unknown) => {
    await rm(location, { recursive: true, force: true });
    throw err;
  });
  return {
    blobEndpoint: `${listening}/${AZURITE_ACCOUNT}`,
    connectionString: azuriteConnectionString(listening),
    async close() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
      await rm(location, { recursive: true, force: true });
    },
  };
}
