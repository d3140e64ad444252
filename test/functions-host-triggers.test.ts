// Queue and timer triggers through the local Functions host (queues in Azurite), the admin API that
// runs a function now, and an app whose entry point fails to load.
import { QueueClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../src/devhost/azurite.js';
import { startFixtureHost, type TestHost } from './helpers/functions-host.js';

const QUEUE = 'work-items';
let azurite: Azurite;
let host: TestHost;
let queue: QueueClient;
let poison: QueueClient;

beforeAll(async () => {
  azurite = await startAzurite(0);
  queue = new QueueClient(azurite.connectionString, QUEUE);
  poison = new QueueClient(azurite.connectionString, `${QUEUE}-poison`);
  await queue.createIfNotExists();
  host = await startFixtureHost('triggers', {
    env: { QUEUE_CONNECTION: azurite.connectionString, WORK_QUEUE: QUEUE },
    queuePollMs: 50,
  });
});
afterAll(async () => {
  await host?.close();
  await azurite?.close();
});

const base64 = (text: string) => Buffer.from(text).toString('base64');

/** What the queue function logged for each of its invocations, in order. */
function queueInputs(
  since: number,
  id: string,
): { message: Record<string, unknown>; triggerMetadata: Record<string, unknown> }[] {
  return host.logs
    .slice(since)
    .filter((r) => r.category === 'Function.work.User' && r.message.includes(`"id":"${id}"`))
    .map(
      (r) =>
        JSON.parse(r.message) as {
          message: Record<string, unknown>;
          triggerMetadata: Record<string, unknown>;
        },
    );
}

describe('queue triggers', () => {
  it('hand the function the decoded message and its metadata, and delete it on success', async () => {
    const since = host.logs.length;
    const mark = host.mark();
    const sent = await queue.sendMessage(base64(JSON.stringify({ id: 'ok-1' })));
    const executed = await host.waitForLog(
      (r) => r.message.startsWith("Executed 'Functions.work' (Succeeded"),
      mark,
    );
    expect(executed.invocationId).toBeDefined();
    const [input] = queueInputs(since, 'ok-1');
    expect(input?.message).toEqual({ id: 'ok-1' });
    const metadata = input!.triggerMetadata;
    expect(metadata).toMatchObject({ queueTrigger: { id: 'ok-1' }, dequeueCount: 1, id: sent.messageId });
    expect(Object.keys(metadata).sort()).toEqual([
      'dequeueCount',
      'expirationTime',
      'id',
      'insertionTime',
      'nextVisibleTime',
      'popReceipt',
      'queueTrigger',
    ]);
    expect(metadata.popReceipt).toMatch(/\S/);
    // DateTimeOffset values as Json.NET writes them.
    for (const time of [metadata.insertionTime, metadata.expirationTime, metadata.nextVisibleTime]) {
      expect(time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    }
    expect(host.logs.find((r) => r.invocationId === executed.invocationId)?.message).toBe(
      `Executing 'Functions.work' (Reason='New queue message detected on '${QUEUE}'.', Id=${executed.invocationId})`,
    );
    const left = await queue.peekMessages({ numberOfMessages: 32 });
    expect(left.peekedMessageItems.filter((m) => m.messageId === sent.messageId)).toEqual([]);
  });

  it('retry a failing message with a rising dequeue count, then move it to the poison queue', async () => {
    const since = host.logs.length;
    const mark = host.mark();
    const body = base64(JSON.stringify({ id: 'bad-1', fail: true }));
    const sent = await queue.sendMessage(body);
    const moved = await host.waitForLog(
      (r) => r.message.startsWith('Message has reached MaxDequeueCount'),
      mark,
    );
    expect(moved).toMatchObject({
      level: 'warning',
      message: `Message has reached MaxDequeueCount of 3. Moving message to queue '${QUEUE}-poison'.`,
      messageId: sent.messageId,
    });
    expect(queueInputs(since, 'bad-1').map((input) => input.triggerMetadata.dequeueCount)).toEqual([1, 2, 3]);
    const failures = host.logs
      .slice(since)
      .filter((r) => r.message.startsWith("Executed 'Functions.work' (Failed"));
    expect(failures).toHaveLength(3);
    expect(failures[0]?.error).toBe('failing bad-1');
    await host.waitForLog((r) => r.message.startsWith(`Moved message '${sent.messageId}'`), mark);
    const poisoned = await poison.peekMessages({ numberOfMessages: 32 });
    expect(poisoned.peekedMessageItems.map((m) => m.messageText)).toContain(body);
  });

  it('poison a message that is not base64 without running the function', async () => {
    const since = host.logs.length;
    const mark = host.mark();
    const sent = await queue.sendMessage('not base64!');
    const moved = await host.waitForLog(
      (r) => r.messageId === sent.messageId && r.message.startsWith('Message has reached'),
      mark,
    );
    expect(moved.level).toBe('warning');
    const attempts = host.logs.filter(
      (r) => r.messageId === sent.messageId && r.message.includes('is not valid base64'),
    );
    expect(attempts).toHaveLength(3);
    expect(host.logs.slice(since).some((r) => r.message.startsWith("Executing 'Functions.work'"))).toBe(
      false,
    );
    await host.waitForLog((r) => r.message.startsWith(`Moved message '${sent.messageId}'`), mark);
    const poisoned = await poison.peekMessages({ numberOfMessages: 32 });
    expect(poisoned.peekedMessageItems.map((m) => m.messageText)).toContain('not base64!');
  });
});

describe('timer triggers', () => {
  it('run on their NCRONTAB schedule with the TimerInfo the host passes', async () => {
    const executing = await host.waitForLog((r) =>
      r.message.startsWith("Executing 'Functions.everySecond' (Reason='Timer fired at"),
    );
    const logged = await host.waitForLog(
      (r) => r.invocationId === executing.invocationId && r.category === 'Function.everySecond.User',
    );
    const { timer } = JSON.parse(logged.message) as { timer: Record<string, unknown> };
    expect(timer).toMatchObject({ schedule: { adjustForDST: true }, isPastDue: false });
    const status = timer.scheduleStatus as Record<string, string>;
    expect(Object.keys(status).sort()).toEqual(['last', 'lastUpdated', 'next']);
    expect(Date.parse(status.next!)).toBeGreaterThan(Date.parse(status.lastUpdated!) - 1000);
  });

  it('run now through POST /admin/functions/{name} with the master key', async () => {
    const url = `${host.url}/admin/functions/yearly`;
    const json = { 'content-type': 'application/json' };
    expect((await fetch(url, { method: 'POST', headers: json, body: '{"input":""}' })).status).toBe(401);
    expect(
      (
        await fetch(url, {
          method: 'POST',
          headers: { ...json, 'x-functions-key': host.functionKey },
          body: '{}',
        })
      ).status,
    ).toBe(401);
    const admin = { ...json, 'x-functions-key': host.masterKey };
    expect(
      (await fetch(`${host.url}/admin/functions/nope`, { method: 'POST', headers: admin, body: '{}' }))
        .status,
    ).toBe(404);
    expect((await fetch(url, { method: 'POST', headers: admin })).status).toBe(400);
    const mark = host.mark();
    const accepted = await fetch(url, { method: 'POST', headers: admin, body: '{"input":""}' });
    expect(accepted.status).toBe(202);
    const logged = await host.waitForLog((r) => r.category === 'Function.yearly.User', mark);
    expect(JSON.parse(logged.message)).toEqual({
      timer: { schedule: { adjustForDST: true }, scheduleStatus: null, isPastDue: false },
    });
    await host.waitForLog((r) => r.message.startsWith("Executed 'Functions.yearly' (Succeeded"), mark);
  });

  it('list their schedules', () => {
    expect(host.functions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: 'yearly', trigger: 'timerTrigger', schedule: '0 0 0 1 1 *' }),
        expect.objectContaining({ name: 'work', trigger: 'queueTrigger', queueName: QUEUE }),
      ]),
    );
  });
});

describe('an entry point that throws while loading', () => {
  it('leaves the host running with no function: every route answers 404, and the error is logged', async () => {
    const broken = await startFixtureHost('load-error');
    try {
      expect(broken.functions).toEqual([]);
      expect(broken.loadError).toBe('REQUIRED_SETTING is not set');
      expect((await fetch(`${broken.url}/api/never`)).status).toBe(404);
      const logged = await broken.waitForLog((r) =>
        r.message.startsWith('Worker was unable to load entry point'),
      );
      expect(logged).toMatchObject({
        level: 'error',
        message: 'Worker was unable to load entry point "index.mjs": REQUIRED_SETTING is not set',
      });
      // The worker also prints the stack, which reaches the host's log as console output.
      await broken.waitForLog(
        (r) =>
          r.category === 'Host.Function.Console' && r.message.includes('Error: REQUIRED_SETTING is not set'),
      );
      await broken.waitForLog((r) => r.message.startsWith('No job functions found'));
    } finally {
      await broken.close();
    }
  });
});
