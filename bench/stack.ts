import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { EmulatorStats } from '../src/emulator/server.js';
import {
  AZURITE_LISTENING,
  azuriteArgs,
  azuriteConnectionString,
  azuriteEntry,
} from '../src/devhost/azurite.js';
import { EMULATOR_KEY } from '../src/emulator/server.js';
import { ENTRY, startServer, type Server } from './children.js';

export const FUNCTION_KEY = 'bench-function-key';
/** UPSTREAM_CONNECTIONS for the bridge: its default, set explicitly so the report can name it. */
export const POOL_SIZE = 64;
/** Large enough for the biggest upload measured. */
const MAX_PART_BYTES = 2 * 1024 * 1024 * 1024;
/** Every process prints "... listening on http://127.0.0.1:<port>...". */
const READY = /listening on (http:\/\/[\d.]+:\d+)/;
/** Server logs, one file per process started. */
const LOG_DIR = fileURLToPath(new URL('../../.bench-tmp/logs/', import.meta.url));
let started = 0;
const logFile = (name: string) => join(LOG_DIR, `${String(++started).padStart(3, '0')}-${name}.log`);

/** The embedded emulator, hashing and discarding media so the disk is not what is measured. */
export function startSink(): Promise<Server> {
  return startServer({
    name: 'sink',
    entry: ENTRY.sink,
    env: { EMULATOR_PORT: '0', EMULATOR_DISCARD_MEDIA: '1' },
    ready: READY,
    logFile: logFile('sink'),
  });
}

export function startBridge(
  sink: Server,
  nodeArgs: string[] = [],
  extraEnv: Record<string, string> = {},
): Promise<Server> {
  return startServer({
    name: 'bridge',
    entry: ENTRY.bridge,
    env: {
      PORT: '0',
      COSMOS_ENDPOINT: sink.origin,
      COSMOS_KEY: EMULATOR_KEY,
      DEV_FUNCTION_KEY: FUNCTION_KEY,
      MAX_PART_BYTES: String(MAX_PART_BYTES),
      MAX_REQUEST_BYTES: String(MAX_PART_BYTES + 1024 * 1024),
      UPSTREAM_CONNECTIONS: String(POOL_SIZE),
      ...extraEnv,
    },
    ready: READY,
    logFile: logFile('bridge'),
    nodeArgs,
  });
}

export function startProxy(sink: Server): Promise<Server> {
  return startServer({
    name: 'tcp-proxy',
    entry: ENTRY.proxy,
    env: { PORT: '0', TARGET: sink.origin },
    ready: READY,
    logFile: logFile('tcp-proxy'),
  });
}

export function startNaive(sink: Server): Promise<Server> {
  return startServer({
    name: 'naive',
    entry: ENTRY.naive,
    env: { PORT: '0', SINK: sink.origin },
    ready: READY,
    logFile: logFile('naive'),
  });
}

/** Azurite's Blob service, its data in `location` (it writes to disk: blob mode has no discard mode). */
export function startAzurite(location: string): Promise<Server> {
  return startServer({
    name: 'azurite',
    entry: azuriteEntry(),
    args: azuriteArgs(0, location),
    env: {},
    ready: AZURITE_LISTENING,
    logFile: logFile('azurite'),
  });
}

/** The settings that put a bridge in blob mode against that Azurite. */
export function blobModeEnv(azurite: Server): Record<string, string> {
  return { MEDIA_STORE: 'blob', BLOB_CONNECTION_STRING: azuriteConnectionString(azurite.origin) };
}

/** Connections the sink accepted so far, and requests it saw (unsigned stats endpoint). */
export async function sinkStats(sink: Server): Promise<EmulatorStats> {
  const response = await request(`${sink.origin}/_emulator/stats`);
  return (await response.body.json()) as EmulatorStats;
}
