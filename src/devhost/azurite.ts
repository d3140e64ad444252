import { spawn, type ChildProcess } from 'node:child_process';
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
export const AZURITE_QUEUE_PORT = 10001;

export interface Azurite {
  /** e.g. `http://127.0.0.1:10000/devstoreaccount1` */
  readonly blobEndpoint: string;
  /** e.g. `http://127.0.0.1:10001/devstoreaccount1`; undefined when the Queue service was not started. */
  readonly queueEndpoint: string | undefined;
  /** Names the Blob endpoint and, when started, the Queue endpoint. */
  readonly connectionString: string;
  close(): Promise<void>;
}

export interface AzuriteOptions {
  /** Start the Queue service too (default true); its port is `queuePort`. */
  queue?: boolean;
  /** Default: the blob port + 1 (10001), or 0 (any free port) when the blob port is 0. */
  queuePort?: number;
}

/** Azurite's Blob service script in the npm package (resolved only when Azurite is started). */
export function azuriteEntry(): string {
  return createRequire(import.meta.url).resolve('azurite/dist/src/blob/main.js');
}

/** Azurite's Queue service script in the npm package. */
export function azuriteQueueEntry(): string {
  return createRequire(import.meta.url).resolve('azurite/dist/src/queue/main.js');
}

/** Arguments for the Blob script: on loopback, telemetry off, its data in `location`. */
export function azuriteArgs(port: number, location: string): string[] {
  return ['--blobHost', '127.0.0.1', '--blobPort', String(port), ...commonArgs(location)];
}

/** Arguments for the Queue script, likewise. */
export function azuriteQueueArgs(port: number, location: string): string[] {
  return ['--queueHost', '127.0.0.1', '--queuePort', String(port), ...commonArgs(location)];
}

function commonArgs(location: string): string[] {
  return ['--location', location, '--silent', '--disableTelemetry', '--skipApiVersionCheck', '--loose'];
}

/** The line Azurite prints once it listens; group 1 is its origin. */
export const AZURITE_LISTENING = /successfully listens on (http:\/\/[\d.]+:\d+)/;

/**
 * A connection string for the well-known account on the Azurite at `origin` (Blob), with the Queue
 * endpoint at `queueOrigin` when given.
 */
export function azuriteConnectionString(origin: string, queueOrigin?: string): string {
  return (
    `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};` +
    `BlobEndpoint=${origin}/${AZURITE_ACCOUNT};` +
    (queueOrigin ? `QueueEndpoint=${queueOrigin}/${AZURITE_ACCOUNT};` : '')
  );
}

/**
 * Azurite's Blob and Queue services from the npm package, each in its own process: on loopback,
 * telemetry off, their data in a new temporary folder that goes when they stop.
 */
export async function startAzurite(
  port: number = AZURITE_PORT,
  options: AzuriteOptions = {},
): Promise<Azurite> {
  const location = await mkdtemp(join(tmpdir(), 'azurite-'));
  const children: ChildProcess[] = [];
  const close = async () => {
    await Promise.all(children.map(stopChild));
    await rm(location, { recursive: true, force: true });
  };
  try {
    const blob = await startService(azuriteEntry(), azuriteArgs(port, location), children);
    let queue: string | undefined;
    if (options.queue ?? true) {
      const queuePort = options.queuePort ?? (port === 0 ? 0 : port + 1);
      queue = await startService(azuriteQueueEntry(), azuriteQueueArgs(queuePort, location), children);
    }
    return {
      blobEndpoint: `${blob}/${AZURITE_ACCOUNT}`,
      queueEndpoint: queue ? `${queue}/${AZURITE_ACCOUNT}` : undefined,
      connectionString: azuriteConnectionString(blob, queue),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Starts one Azurite service script and resolves with its origin once it listens. */
async function startService(entry: string, args: string[], children: ChildProcess[]): Promise<string> {
  const child = spawn(process.execPath, [entry, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  return new Promise<string>((resolve, reject) => {
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
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}
