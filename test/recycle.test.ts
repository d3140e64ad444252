import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CosmosClient } from '../src/cosmos/client.js';
import { startEmulator, type Emulator } from '../src/emulator/server.js';
import { loadCosmosSettings } from '../src/settings.js';
import { startAppProcess, type AppProcess } from './helpers/app-process.js';
import { recordSecret } from './helpers/scrape.js';

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

/** One app instance (host and worker in a process group of their own), polling its queue quickly. */
function instance(): Promise<AppProcess> {
  return startAppProcess(env, {
    functionKey: FUNCTION_KEY,
    queuePollMs: 100,
    queueReceiveVisibilitySeconds: 2,
  });
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
    let second: AppProcess | undefined;
    try {
      // Cosmos DB stores the create 3 s after it came in: the bridge stopped waiting after 1 s.
      emulator.faults.add({ method: 'POST', path: '/docs/recycled/attachments', stallMs: 3000, times: 1 });
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
      await first.kill();
      emulator.faults.clear();
      // Stored by now or soon (3 s after it came in; how long the kill took depends on the machine's
      // load): either way before the message comes back from the queue, 2 s after the dead look took it.
      second = await instance();
      const undone = await second.line((line) => line.settled === 'undone', 30_000);
      expect(undone).toMatchObject({ doc: 'recycled', attachment: 'late.jpg', look: 1 });
      expect(await findLate()).toBeUndefined();
      // The first instance never got that far: it died looking.
      expect(first.lines().some((line) => line.settled !== undefined)).toBe(false);
    } finally {
      await first.kill();
      await second?.kill();
    }
  });
});

async function findLate() {
  const reply = await cosmos.readAttachment({ db: 'demo', coll: 'items', doc: 'recycled' }, 'late.jpg', {
    partitionKey: ['recycled'],
  });
  return reply.status === 200 ? reply.body : undefined;
}
