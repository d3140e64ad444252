import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { EventEmitter, once } from 'node:events';
import { expect, inject } from 'vitest';
import { CosmosClient } from '../../src/cosmos/client.js';
import { mediaResourceLink } from '../../src/cosmos/ids.js';
import { signedHeaders } from '../../src/cosmos/signer.js';
import { AZURITE_KEY } from '../../src/devhost/azurite.js';
import { startLocalServices } from '../../src/devhost/local-services.js';
import { startFunctionsHost, type FunctionsHost } from '../../src/functions-host/host.js';
import type { HostLogRecord } from '../../src/functions-host/host-logs.js';
import type { Azurite } from '../../src/devhost/azurite.js';
import {
  startEmulator,
  type Emulator,
  type EmulatorOptions,
  type ObservedRequest,
} from '../../src/emulator/server.js';
import { jsonLineLogger } from '../../src/log.js';
import { loadCosmosSettings, type Env } from '../../src/settings.js';
import { answerRecorder } from './answers.js';
import { recordOutput, recordSecret } from './scrape.js';

export const DB = 'demo';
export const COLL = 'items';
export const DOC = 'welcome';
export const FUNCTION_KEY = 'test-function-key-0123456789';

/** A running bridge (dev host) in front of a running emulator, over real loopback sockets. */
/** The repository itself: package.json `main` is the built entry the suite runs. */
const APP_DIR = fileURLToPath(new URL('../..', import.meta.url));
const LEVELS: Record<string, string> = {
  information: 'info',
  warning: 'warn',
  error: 'error',
  critical: 'error',
};

/** A line the app wrote (a JSON object with a `message`), or undefined for anything else. */
function appLine(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    return typeof parsed.message === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export interface Stack {
  /** The local Functions host serving the app, and Azurite when the dev host's rules started one. */
  host: { url: string; azurite: Azurite | undefined; functions: FunctionsHost };
  emulator: Emulator;
  /** A signed client straight to the emulator, for checking what was stored. */
  cosmos: CosmosClient;
  /** The app's log lines (JSON, with their level), as it wrote them through the invocation context. */
  logs: string[];
  /** The local Functions host's own records (its routing, the worker's system lines). */
  hostLogs: HostLogRecord[];
  /**
   * The first log line (parsed) that matches, waiting for it if it has not come yet (up to
   * `timeoutMs`): how tests wait for work that goes on after an answer, such as clean-up.
   */
  logLine(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** How the clean-up of a failed create of `attachment` on `doc` ended: `undone`, `absent` or `kept`. */
  settled(doc: string, attachment: string): Promise<string>;
  /**
   * Waits until the durable clean-up queue holds no task (none waiting, none being done), and returns
   * how many tasks ended in the poison queue.
   */
  cleanupDrained(timeoutMs?: number): Promise<number>;
  requests: ObservedRequest[];
  /** Every answer the host gave in front of the app, in order: method, path (no query), status. */
  answered: { method: string; path: string; status: number }[];
  /** The attachments route of a seeded document. */
  route(doc?: string): string;
  /** Headers a caller normally sends: the function key and the document's partition key. */
  headers(doc?: string): Record<string, string>;
  listAttachments(doc?: string): Promise<Record<string, unknown>[]>;
  readMedia(mediaLink: string): Promise<Buffer>;
  /**
   * Another instance of the app: a second local Functions host with the same settings (plus `env`),
   * on the same emulator and storage, its logs joining this stack's. Closed with the stack.
   */
  startInstance(env?: Env): Promise<FunctionsHost>;
  close(): Promise<void>;
}

export type LogLine = Record<string, unknown> & { message: string; level: string };

export interface StackOptions {
  /** Settings for the bridge; a function sees the emulator (its URL and key) first. */
  env?: Env | ((emulator: Emulator) => Env);
  emulator?: EmulatorOptions;
  /** Extra documents to seed in demo/items (partition key /id). */
  docs?: string[];
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const logs: string[] = [];
  const hostLogs: HostLogRecord[] = [];
  const logged = new EventEmitter();
  const requests: ObservedRequest[] = [];
  const answered: { method: string; path: string; status: number }[] = [];
  const pushLine = (line: string) => {
    logs.push(line);
    recordOutput(line);
    logged.emit('line', JSON.parse(line) as LogLine);
  };
  const log = jsonLineLogger((_level, line) => pushLine(line));
  const logLine = async (match: (line: LogLine) => boolean, timeoutMs = 30_000): Promise<LogLine> => {
    const seen = logs.map((line) => JSON.parse(line) as LogLine).find(match);
    if (seen) return seen;
    const signal = AbortSignal.timeout(timeoutMs);
    for (;;) {
      const [line] = (await once(logged, 'line', { signal })) as [LogLine];
      if (match(line)) return line;
    }
  };
  const emulator = await startEmulator({
    port: 0,
    log,
    onRequest: (request) => requests.push(request),
    ...options.emulator,
  });
  emulator.store.createDatabase({ id: DB });
  emulator.store.createCollection(DB, { id: COLL, partitionKey: { paths: ['/id'], kind: 'Hash' } });
  for (const doc of [DOC, 'other', ...(options.docs ?? [])]) {
    emulator.store.createDocument(DB, COLL, { id: doc }, JSON.stringify([doc]));
  }
  const env: Env = {
    COSMOS_ENDPOINT: emulator.url,
    COSMOS_KEY: emulator.key,
    AZURITE_PORT: '0',
    // The run's one Azurite, with a clean-up queue of this stack's own.
    AzureWebJobsStorage: inject('storage'),
    CLEANUP_QUEUE: `cleanup-${randomBytes(6).toString('hex')}`,
    ...(typeof options.env === 'function' ? options.env(emulator) : options.env),
  };
  recordSecret(emulator.key, env.COSMOS_KEY, env.COSMOS_KEY_SECONDARY, FUNCTION_KEY, AZURITE_KEY);
  recordSecret(/AccountKey=([^;]+)/i.exec(env.BLOB_CONNECTION_STRING ?? '')?.[1]);
  recordSecret(/AccountKey=([^;]+)/i.exec(env.AzureWebJobsStorage ?? '')?.[1]);
  recordSecret(/[?&;]sig=([^&;]+)/i.exec(env.BLOB_CONNECTION_STRING ?? '')?.[1]);
  for (const secret of env.WEBHOOK_SECRET?.split(/\s+/) ?? [])
    recordSecret(secret, secret.replace(/^whsec_/, ''));
  // What `npm start` does: stand-ins for the services the settings leave out (Azurite for blob
  // media), then the app in the local Functions host, through @azure/functions as in Azure.
  const services = await startLocalServices(env, log);
  const instances: FunctionsHost[] = [];
  let functionsHost: FunctionsHost;
  const startHost = (extraEnv: Env = {}) =>
    startFunctionsHost({
      appDir: APP_DIR,
      // A developer's local.settings.json must not change what the suite runs.
      localSettings: false,
      env: { PATH: process.env.PATH, ...services.env, ...extraEnv },
      port: 0,
      functionKey: FUNCTION_KEY,
      queuePollMs: 100,
      log: false,
      onLog: (record) => {
        recordOutput(JSON.stringify(record));
        // The app's own lines (through the invocation context) are JSON; the host's are kept apart.
        // The app's own lines are JSON (through the invocation context, or printed outside any).
        const own = record.source === 'worker' ? appLine(record.message) : undefined;
        if (own)
          pushLine(JSON.stringify({ ...own, level: own.level ?? LEVELS[record.level] ?? record.level }));
        else hostLogs.push(record);
      },
      observeResponses: (request) => {
        let head = '';
        const path = request.url.split('?', 1)[0]!;
        // Every answer is also checked against the OpenAPI description at the end of the run.
        const answer = answerRecorder(request);
        return {
          head: (status, headers) => {
            head = `${status} ${JSON.stringify(headers)}`;
            answered.push({ method: request.method, path, status });
            recordOutput(head);
            answer.head(status, headers);
          },
          chunk: (bytes) => {
            recordOutput(`${head} ${bytes.toString('utf8')}`);
            answer.chunk(bytes);
          },
          end: (finished) => answer.end?.(finished),
        };
      },
    });
  try {
    functionsHost = await startHost();
  } catch (err) {
    await services.close();
    throw err;
  }
  recordSecret(functionsHost.masterKey);
  const host = { url: functionsHost.url, azurite: services.azurite, functions: functionsHost };
  const cosmos = new CosmosClient({
    ...loadCosmosSettings({ COSMOS_ENDPOINT: emulator.url, COSMOS_KEY: emulator.key }),
    timeoutMs: 30_000,
    connections: 4,
  });
  const enc = encodeURIComponent;
  const stack: Stack = {
    host,
    answered,
    emulator,
    cosmos,
    logs,
    hostLogs,
    logLine,
    async cleanupDrained(timeoutMs = 120_000) {
      const { QueueServiceClient } = await import('@azure/storage-queue');
      const service = QueueServiceClient.fromConnectionString(env.AzureWebJobsStorage!);
      const queue = service.getQueueClient(env.CLEANUP_QUEUE!);
      const deadline = Date.now() + timeoutMs;
      // Nothing signals an empty queue: its count is polled, until two readings a beat apart say 0.
      for (let zeros = 0; zeros < 2;) {
        if (Date.now() > deadline) throw new Error('the clean-up queue did not drain in time');
        const { approximateMessagesCount } = await queue.getProperties();
        zeros = approximateMessagesCount === 0 ? zeros + 1 : 0;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      const poison = service.getQueueClient(`${env.CLEANUP_QUEUE!}-poison`);
      return (await poison.exists()) ? ((await poison.getProperties()).approximateMessagesCount ?? 0) : 0;
    },
    async settled(doc, attachment) {
      const line = await logLine(
        (l) => l.settled !== undefined && l.doc === doc && l.attachment === attachment,
      );
      return String(line.settled);
    },
    requests,
    route: (doc = DOC) => `${host.url}/api/dbs/${DB}/colls/${COLL}/docs/${enc(doc)}/attachments`,
    headers: (doc = DOC) => ({
      'x-functions-key': FUNCTION_KEY,
      'x-ms-documentdb-partitionkey': JSON.stringify([doc]),
    }),
    async listAttachments(doc = DOC) {
      // Every page: Cosmos DB (and the emulator) answers 100 at a time unless asked otherwise.
      const all: Record<string, unknown>[] = [];
      let continuation: string | undefined;
      do {
        const reply = await cosmos.listAttachments(
          { db: DB, coll: COLL, doc },
          { partitionKey: [doc], maxItemCount: 1000, continuation },
        );
        if (reply.status !== 200) throw new Error(`list failed: ${reply.status} ${reply.body}`);
        all.push(...(JSON.parse(reply.body) as { Attachments: Record<string, unknown>[] }).Attachments);
        continuation = reply.headers['x-ms-continuation'];
      } while (continuation);
      return all;
    },
    async readMedia(mediaLink) {
      const mediaId = mediaLink.replace(/^\/media\//, '');
      const key = loadCosmosSettings({ COSMOS_ENDPOINT: emulator.url, COSMOS_KEY: emulator.key }).key;
      const response = await fetch(`${emulator.url}/media/${mediaId}`, {
        headers: signedHeaders(key, {
          verb: 'GET',
          resourceType: 'media',
          resourceLink: mediaResourceLink(mediaId),
        }),
      });
      if (response.status !== 200)
        throw new Error(`media read failed: ${response.status} ${await response.text()}`);
      return Buffer.from(await response.arrayBuffer());
    },
    async startInstance(extraEnv) {
      const instance = await startHost(extraEnv);
      recordSecret(instance.masterKey);
      instances.push(instance);
      return instance;
    },
    async close() {
      for (const instance of instances) await instance.close();
      await functionsHost.close();
      await services.close();
      await cosmos.close();
      await emulator.close();
    },
  };
  return stack;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Reads an attachment's media back through the bridge: a byte range (206), then the whole (200). */
export async function expectMediaServed(stack: Stack, doc: string, id: string, bytes: Buffer): Promise<void> {
  const mediaUrl = `${stack.route(doc)}/${id}/media`;
  const part = await fetch(mediaUrl, { headers: { ...stack.headers(doc), range: 'bytes=100-1099' } });
  expect(part.status).toBe(206);
  expect(part.headers.get('content-range')).toBe(`bytes 100-1099/${bytes.length}`);
  expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 1100))).toBe(true);
  const whole = await fetch(mediaUrl, { headers: stack.headers(doc) });
  expect(whole.status).toBe(200);
  expect(sha256(Buffer.from(await whole.arrayBuffer()))).toBe(sha256(bytes));
}

export async function json(response: Response): Promise<Record<string, unknown>> {
  return (await response.json()) as Record<string, unknown>;
}
