import { copyFile, mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { EmulatorStats } from '../src/emulator/server.js';
import {
  AZURITE_LISTENING,
  azuriteArgs,
  azuriteConnectionString,
  azuriteEntry,
  azuriteQueueArgs,
  azuriteQueueEntry,
} from '../src/devhost/azurite.js';
import { EMULATOR_KEY } from '../src/emulator/server.js';
import { RECOMMENDED_NODE_OPTIONS } from '../src/runtime.js';
import { ENTRY, startServer, type Server } from './children.js';

export const FUNCTION_KEY = 'bench-function-key';
/** UPSTREAM_CONNECTIONS for the bridge: its default, set explicitly so the report can name it. */
export const POOL_SIZE = 64;
/** Large enough for the biggest upload measured. */
const MAX_PART_BYTES = 4 * 1024 * 1024 * 1024;
/** Every process of ours prints "... listening on http://127.0.0.1:<port>...". */
const READY = /listening on (http:\/\/[\d.]+:\d+)/;
/** Server logs, one file per process started. */
const LOG_DIR = fileURLToPath(new URL('../../.bench-tmp/logs/', import.meta.url));
let started = 0;
const logFile = (name: string) => join(LOG_DIR, `${String(++started).padStart(3, '0')}-${name}.log`);

/** A process the bridge consists of, named for the report. */
export interface Member {
  label: string;
  pid: number;
}

/** Processes measured together: the node:http adapter (one), the local Functions host (host + worker). */
export interface Group {
  name: string;
  origin: string;
  members: Member[];
  stop(): Promise<void>;
}

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

/** Azurite (Blob and Queue) for AzureWebJobsStorage, where the bridge queues its clean-up work. */
export async function startStorage(): Promise<{ connectionString: string; servers: Server[] }> {
  const location = await mkdtemp(join(tmpdir(), 'bench-azurite-'));
  const blob = await startServer({
    name: 'azurite-blob',
    entry: azuriteEntry(),
    args: azuriteArgs(0, location),
    env: {},
    ready: AZURITE_LISTENING,
    logFile: logFile('azurite-blob'),
  });
  const queue = await startServer({
    name: 'azurite-queue',
    entry: azuriteQueueEntry(),
    args: azuriteQueueArgs(0, location),
    env: {},
    ready: AZURITE_LISTENING,
    logFile: logFile('azurite-queue'),
  });
  return { connectionString: azuriteConnectionString(blob.origin, queue.origin), servers: [blob, queue] };
}

/** Settings every bridge of this run gets besides the benchmark's own (`--env`). */
let extraBridgeEnv: Record<string, string> = {};
export function setBridgeEnv(env: Record<string, string>): void {
  extraBridgeEnv = { ...env };
}

function bridgeEnv(sink: Server, storage: string): Record<string, string> {
  return {
    PORT: '0',
    COSMOS_ENDPOINT: sink.origin,
    COSMOS_KEY: EMULATOR_KEY,
    DEV_FUNCTION_KEY: FUNCTION_KEY,
    AzureWebJobsStorage: storage,
    MAX_PART_BYTES: String(MAX_PART_BYTES),
    MAX_REQUEST_BYTES: String(MAX_PART_BYTES + 1024 * 1024),
    FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: String(MAX_PART_BYTES + 2 * 1024 * 1024),
    UPSTREAM_CONNECTIONS: String(POOL_SIZE),
    ...extraBridgeEnv,
  };
}

/**
 * Another build of the bridge to measure beside this one: a checkout with node_modules and dist/.
 * This benchmark's two entry points are copied into its dist/bench/, where they load that build.
 */
export interface Build {
  name: string;
  /** Absolute; undefined for this checkout. */
  dir: string | undefined;
}

export async function prepareBuild(build: Build): Promise<void> {
  if (!build.dir) return;
  await mkdir(join(build.dir, 'dist', 'bench'), { recursive: true });
  for (const entry of [ENTRY.adapter, ENTRY.functions]) {
    await copyFile(entry, join(build.dir, 'dist', 'bench', basename(entry)));
  }
}

function entryOf(build: Build | undefined, entry: string): string {
  return build?.dir ? join(build.dir, 'dist', 'bench', basename(entry)) : entry;
}

/** The bridge on node:http through its fetch adapter: one process (bench/direct-host.ts). */
export async function startAdapter(
  sink: Server,
  storage: string,
  nodeArgs: string[],
  label = 'adapter',
  build?: Build,
): Promise<Group> {
  const server = await startServer({
    name: label,
    entry: entryOf(build, ENTRY.adapter),
    env: bridgeEnv(sink, storage),
    ready: READY,
    logFile: logFile(label),
    nodeArgs,
  });
  return {
    name: 'node:http adapter',
    origin: server.origin,
    members: [{ label: 'adapter', pid: server.pid }],
    stop: () => server.stop(),
  };
}

/** The bridge as Azure runs it: the local Functions host and its worker (bench/functions-host.ts). */
export async function startFunctions(
  sink: Server,
  storage: string,
  nodeArgs: { host: string[]; worker: string[] },
  extraWorkerArgs: string[] = [],
  label = 'functions',
  build?: Build,
  appDir?: string,
): Promise<Group> {
  const server = await startServer({
    name: label,
    entry: entryOf(build, ENTRY.functions),
    env: {
      ...bridgeEnv(sink, storage),
      BENCH_WORKER_NODE_ARGS: nodeArgs.worker.join(' '),
      BENCH_WORKER_EXTRA_ARGS: extraWorkerArgs.join(' '),
      ...(appDir ? { BENCH_APP_DIR: appDir } : {}),
    },
    ready: READY,
    logFile: logFile(label),
    nodeArgs: nodeArgs.host,
  });
  const worker = /\(worker (\d+)\)/.exec(await server.output())?.[1];
  if (!worker) throw new Error(`${label}: no worker pid in its ready line`);
  return {
    name: 'local Functions host',
    origin: server.origin,
    members: [
      { label: 'host', pid: server.pid },
      { label: 'worker', pid: Number(worker) },
    ],
    stop: () => server.stop(),
  };
}

/**
 * One bridge process to measure with node flags of its own (bench/gc-flags.mjs, bench/rss-rounds.mjs):
 * the Functions worker, in a local Functions host whose own process keeps the recommended flags, or
 * the node:http adapter. The process measured is the group's last member.
 */
export function startBridgeWithFlags(
  which: 'worker' | 'adapter',
  sink: Server,
  storage: string,
  flags: string[],
  label: string,
): Promise<Group> {
  return which === 'worker'
    ? startFunctions(sink, storage, { host: [...RECOMMENDED_NODE_OPTIONS], worker: flags }, [], label)
    : startAdapter(sink, storage, flags, label);
}

const FUNCTIONS_FLOOR_APP = fileURLToPath(new URL('../../bench/functions-floor/', import.meta.url));

/**
 * The least a Functions app does for a JSON create (bench/functions-floor.ts), run by the local
 * Functions host as the bridge is: its small-request floor on the path Azure runs.
 */
export function startFunctionsFloor(
  sink: Server,
  storage: string,
  nodeArgs: { host: string[]; worker: string[] },
): Promise<Group> {
  return startFunctions(sink, storage, nodeArgs, [], 'functions-floor', undefined, FUNCTIONS_FLOOR_APP);
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

/**
 * The least a Node bridge does, in front of the sink: for a JSON create (`small`, bench/small-floor.ts)
 * or for a multipart upload (`upload`, bench/upload-floor.ts).
 */
export function startFloor(kind: 'small' | 'upload', sink: Server, nodeArgs: string[]): Promise<Server> {
  const name = `${kind}-floor`;
  return startServer({
    name,
    entry: kind === 'small' ? ENTRY.smallFloor : ENTRY.uploadFloor,
    env: { PORT: '0', TARGET: sink.origin, FUNCTION_KEY },
    ready: READY,
    logFile: logFile(name),
    nodeArgs,
  });
}

/** Connections the sink accepted so far, and requests it saw (unsigned stats endpoint). */
export async function sinkStats(sink: Server): Promise<EmulatorStats> {
  const response = await request(`${sink.origin}/_emulator/stats`);
  return (await response.body.json()) as EmulatorStats;
}
