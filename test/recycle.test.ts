import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CosmosClient } from '../src/cosmos/client.js';
import { startEmulator, type Emulator } from '../src/emulator/server.js';
import { loadCosmosSettings } from '../src/settings.js';
import { recordOutput, recordSecret } from './helpers/scrape.js';

/**
 * Issue "Never delete what was confirmed": clean-up outlives the instance that began it. One app
 * instance is killed while it looks for a create stored late; another, started afterwards, finishes
 * the clean-up from the durable queue.
 */
const FUNCTION_KEY = 'recycle-function-key-0123456789';
let emulator: Emulator;
let cosmos: CosmosClient;
let env: Record<string, string>;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  emulator.store.createDatabase({ id: 'demo' });
  emulator.store.createCollection('demo', { id: 'items', partitionKey: { paths: ['/id'], kind: 'Hash' } });
  emulator.store.createDocument('demo', 'items', { id: 'recycled' }, '["recycled"]');
  cosmos = new CosmosClient({
    ...loadCosmosSettings({ COSMOS_ENDPOINT: emulator.url, COSMOS_KEY: emulator.key }),
    timeoutMs: 10_000,
    connections: 2,
  });
  env = {
    PATH: process.env.PATH ?? '',
    COSMOS_ENDPOINT: emulator.url,
    COSMOS_KEY: emulator.key,
    AzureWebJobsStorage: inject('storage'),
    CLEANUP_QUEUE: `recycle-${randomBytes(5).toString('hex')}`,
    UPSTREAM_TIMEOUT_MS: '1000',
  };
  recordSecret(emulator.key, FUNCTION_KEY);
});
afterAll(async () => {
  await cosmos.close();
  await emulator.close();
});

/** One app instance: the local Functions host and its worker, in a process group of their own. */
async function instance(): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const options = { functionKey: FUNCTION_KEY, queuePollMs: 100, queueReceiveVisibilitySeconds: 2 };
  const child = spawn(process.execPath, ['test/helpers/host-process.mjs', JSON.stringify(options)], {
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    recordOutput(chunk.toString());
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const match = /HOST READY (\S+)/.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => reject(new Error(`the instance exited (${code}):\n${output}`)));
  });
  return { child, url, output: () => output };
}

/** Kills an instance, host and worker, the way a platform recycles one: no warning, no clean exit. */
async function kill(child: ChildProcess): Promise<void> {
  process.kill(-child.pid!, 'SIGKILL');
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
}

async function waitFor(condition: () => boolean, timeoutMs = 20_000, what = ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met in time: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('an instance killed mid-recovery', () => {
  it('leaves its clean-up on the queue, and another instance finishes it', async () => {
    const first = await instance();
    let second: Awaited<ReturnType<typeof instance>> | undefined;
    try {
      // Cosmos DB stores the create 4 s after it came in: the bridge stopped waiting after 1 s. The
      // first instance's look from the queue comes some 3 s after the create (answer, then the queue's
      // poll) and its second look some 5 s after (the message's visibility timeout): 4 s falls between.
      emulator.faults.add({ method: 'POST', path: '/docs/recycled/attachments', stallMs: 4000, times: 1 });
      const answer = await fetch(`${first.url}/api/dbs/demo/colls/items/docs/recycled/attachments`, {
        method: 'POST',
        headers: {
          'x-functions-key': FUNCTION_KEY,
          'x-ms-documentdb-partitionkey': '["recycled"]',
          'content-type': 'application/json',
        },
        body: JSON.stringify({
          id: 'late.jpg',
          contentType: 'image/jpeg',
          media: 'https://cdn.example/late.jpg',
        }),
      });
      expect(answer.status).toBe(504);
      // Its next look, from the queue, hangs on the look-up: the instance is mid-recovery when it dies.
      emulator.faults.add({ method: 'GET', path: '/docs/recycled/attachments/late.jpg', delayMs: 15_000 });
      const lookups = () => emulator.stats().requests;
      const before = lookups();
      await waitFor(
        () => /Executing 'Functions\.cleanup'/.test(first.output()) && lookups() > before,
        20_000,
        `the first instance's look from the queue:\n${first.output().slice(-3000)}`,
      );
      await kill(first.child);
      emulator.faults.clear();
      expect(await findLate()).toBeUndefined(); // not stored yet
      second = await instance();
      const undone = () => appLines(second!.output()).find((line) => line.settled === 'undone');
      await waitFor(() => undone() !== undefined, 30_000, 'the second instance settling');
      expect(undone()).toMatchObject({ doc: 'recycled', attachment: 'late.jpg', look: 1 });
      expect(await findLate()).toBeUndefined();
      // The first instance never got that far: it died looking.
      expect(appLines(first.output()).some((line) => line.settled !== undefined)).toBe(false);
    } finally {
      if (first.child.exitCode === null && first.child.signalCode === null) await kill(first.child);
      if (second) await kill(second.child);
    }
  });
});

/** The app's own lines (JSON in the host's records) in an instance's output. */
function appLines(output: string): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const text of output.split('\n')) {
    try {
      const record = JSON.parse(text) as { message?: unknown };
      if (typeof record.message === 'string' && record.message.startsWith('{'))
        lines.push(JSON.parse(record.message) as Record<string, unknown>);
    } catch {
      // not a log record
    }
  }
  return lines;
}

async function findLate() {
  const reply = await cosmos.readAttachment({ db: 'demo', coll: 'items', doc: 'recycled' }, 'late.jpg', {
    partitionKey: ['recycled'],
  });
  return reply.status === 200 ? reply.body : undefined;
}
