import { createHmac } from 'node:crypto';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { json, startStack, type Stack } from './helpers/stack.js';

/**
 * Issue "Never delete what was confirmed", findings 1 to 3: a create whose outcome was unknown is
 * cleaned up only when it is provably its own, rollbacks that meet a transient failure finish, and a
 * caller that leaves before its answer leaves nothing behind.
 */
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    env: { UPSTREAM_TIMEOUT_MS: '400', UPSTREAM_RETRY_BUDGET_MS: '1000', WEBHOOK_SECRET: SECRET },
    docs: [
      'o-form',
      'o-json',
      'o-hook',
      'o-late',
      'o-roll',
      'o-roll-down',
      'o-gone',
      'o-retry',
      'o-retry2',
      'o-steal',
      'o-take',
    ],
  });
});
afterEach(() => stack.emulator.faults.clear());
afterAll(() => stack.close());

function form(doc: string, files: [string, string][]) {
  const data = new FormData();
  for (const [name, text] of files) data.append('f', new Blob([text], { type: 'image/png' }), name);
  return fetch(stack.route(doc), { method: 'POST', headers: stack.headers(doc), body: data });
}

function metadata(doc: string, id: string) {
  return fetch(stack.route(doc), {
    method: 'POST',
    headers: { ...stack.headers(doc), 'content-type': 'application/json' },
    body: JSON.stringify({ id, contentType: 'image/jpeg', media: `https://cdn.example/${id}.jpg` }),
  });
}

function webhook(doc: string, id: string, messageId: string) {
  const body = JSON.stringify({ id, contentType: 'video/mp4', media: `https://media.example/${id}.mp4` });
  const timestamp = Math.floor(Date.now() / 1000);
  const key = Buffer.from(SECRET.slice('whsec_'.length), 'base64');
  const signature = createHmac('sha256', key).update(`${messageId}.${timestamp}.${body}`).digest('base64');
  return fetch(`${stack.host.url}/api/webhooks/dbs/demo/colls/items/docs/${doc}/attachments`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': messageId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': `v1,${signature}`,
      'x-ms-documentdb-partitionkey': JSON.stringify([doc]),
    },
    body,
  });
}

/**
 * Store the next `method` (a create, or a replace such as a take-over) to `doc`'s attachments, but drop
 * its answer: the bridge cannot know the outcome.
 */
function dropNextAnswer(doc: string, method: 'POST' | 'PUT' = 'POST') {
  stack.emulator.faults.add({ method, path: `/docs/${doc}/attachments`, dropAfterCommit: true, times: 1 });
}

/** Cut the next create to `doc` off after its first byte: Cosmos DB stores nothing, the bridge cannot know. */
function cutNextCreate(doc: string) {
  stack.emulator.faults.add({
    method: 'POST',
    path: `/docs/${doc}/attachments`,
    dropAfterBytes: 1,
    times: 1,
  });
}

describe('a confirmed upload is never deleted by the clean-up of an earlier attempt (finding 1)', () => {
  it('multipart: the retry that was answered 201 survives every look the failed attempt makes', async () => {
    cutNextCreate('o-form');
    const first = await form('o-form', [['photo.png', 'the same bytes']]);
    expect(first.status).toBe(502);
    const again = await form('o-form', [['photo.png', 'the same bytes']]);
    expect(again.status).toBe(201);
    // The failed attempt's last look finds the retry's attachment, proves it is not its own, and keeps it.
    expect(await stack.settled('o-form', 'photo.png')).toBe('kept');
    const stored = await stack.listAttachments('o-form');
    expect(stored.map((a) => a.id)).toEqual(['photo.png']);
    const answered = ((await json(again)) as { attachments: Record<string, unknown>[] }).attachments[0]!;
    expect(stored[0]!._rid).toBe(answered._rid);
  });

  it('JSON metadata: the same', async () => {
    cutNextCreate('o-json');
    expect((await metadata('o-json', 'cdn.jpg')).status).toBe(502);
    const again = await metadata('o-json', 'cdn.jpg');
    expect(again.status).toBe(201);
    expect(await stack.settled('o-json', 'cdn.jpg')).toBe('kept');
    expect((await stack.listAttachments('o-json')).map((a) => a._rid)).toEqual([(await json(again))._rid]);
  });

  it('webhooks: a redelivery answered 201 survives the first delivery’s clean-up', async () => {
    cutNextCreate('o-hook');
    expect((await webhook('o-hook', 'clip.mp4', 'msg_cut')).status).toBe(502);
    const again = await webhook('o-hook', 'clip.mp4', 'msg_cut');
    expect(again.status).toBe(201);
    expect(await stack.settled('o-hook', 'clip.mp4')).toBe('kept');
    expect((await stack.listAttachments('o-hook')).map((a) => a.webhookId)).toEqual(['msg_cut']);
  });

  it('a create Cosmos DB stored after its request failed is removed, and a retry after that succeeds', async () => {
    // Stored 2 s after it was sent: the bridge stopped waiting at 400 ms.
    stack.emulator.faults.add({ method: 'POST', path: '/docs/o-late/attachments', stallMs: 2000, times: 1 });
    expect((await metadata('o-late', 'late.jpg')).status).toBe(504);
    expect(await stack.settled('o-late', 'late.jpg')).toBe('undone');
    expect(await stack.listAttachments('o-late')).toEqual([]);
    expect((await metadata('o-late', 'late.jpg')).status).toBe(201);
  });
});

describe('a retry that finds what its earlier attempt stored', () => {
  it('gets 201 for that very attachment, which the earlier attempt’s clean-up then keeps', async () => {
    // Stored, but the answer never came back: the phone sends the same form again.
    dropNextAnswer('o-retry');
    const first = await form('o-retry', [['again.png', 'same bytes, sent twice']]);
    expect(first.status).toBe(502);
    const again = await form('o-retry', [['again.png', 'same bytes, sent twice']]);
    expect(again.status).toBe(201);
    const answered = ((await json(again)) as { attachments: Record<string, unknown>[] }).attachments[0]!;
    expect(await stack.settled('o-retry', 'again.png')).toBe('kept');
    const stored = await stack.listAttachments('o-retry');
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ _rid: answered._rid, bridgeUploadId: answered.bridgeUploadId });
  });

  it('never takes another request’s confirmed attachment for its own throttled first attempt (soak finding)', async () => {
    // P stores photo.png and is answered 201: the attachment carries P's mark.
    const bytes = 'the same bytes, uploaded by two requests';
    const confirmed = await form('o-steal', [['photo.png', bytes]]);
    expect(confirmed.status).toBe(201);
    const answered = ((await json(confirmed)) as { attachments: Record<string, unknown>[] }).attachments[0]!;
    // R sends the same file; its first try is answered 503 (nothing stored), its retry meets P's 409.
    // R then fails on a later part, and rolls back what it holds.
    stack.emulator.faults.add({ method: 'POST', path: '/docs/o-steal/attachments', status: 503, times: 1 });
    const failed = await form('o-steal', [
      ['photo.png', bytes],
      ['photo.png', 'a second part under a taken id'],
    ]);
    expect(failed.status).toBe(409);
    // The rollback ran before that answer (nothing failed, so nothing went to the queue).
    expect((await json(failed)).message).not.toMatch(/still removing/);
    const stored = await stack.listAttachments('o-steal');
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ id: 'photo.png', _rid: answered._rid });
  });

  it('undoes its take-over when that was stored unanswered and the retry then failed (soak finding)', async () => {
    // The first attempt is stored, but its answer never comes back: the phone sends the form again.
    dropNextAnswer('o-take');
    expect((await form('o-take', [['took.png', 'bytes taken over']])).status).toBe(502);
    // The retry finds those bytes and takes the attachment over (marks it as its own); that write is
    // stored too, and its answer lost: the retry fails, and nobody was ever answered 201.
    dropNextAnswer('o-take', 'PUT');
    expect((await form('o-take', [['took.png', 'bytes taken over']])).status).toBe(502);
    expect(await stack.cleanupDrained()).toBe(0);
    expect(await stack.listAttachments('o-take')).toEqual([]);
  });

  it('still gets 409 for other content under that id', async () => {
    dropNextAnswer('o-retry2');
    expect((await form('o-retry2', [['clash.png', 'the first bytes']])).status).toBe(502);
    expect((await form('o-retry2', [['clash.png', 'other bytes']])).status).toBe(409);
  });
});

describe('rollback that meets a transient failure (finding 2)', () => {
  it('retries a rollback delete that fails once, so a failed form leaves nothing', async () => {
    expect((await form('o-roll', [['taken.png', 'x']])).status).toBe(201);
    stack.emulator.faults.add({
      method: 'DELETE',
      path: '/docs/o-roll/attachments/one.png',
      status: 500,
      times: 1,
    });
    stack.emulator.faults.add({
      method: 'DELETE',
      path: '/docs/o-roll/attachments/two.png',
      dropAfterCommit: true,
      times: 1,
    });
    const response = await form('o-roll', [
      ['one.png', '1'],
      ['two.png', '2'],
      ['taken.png', '3'],
    ]);
    expect(response.status).toBe(409);
    expect((await json(response)).message).not.toMatch(/still removing/);
    expect((await stack.listAttachments('o-roll')).map((a) => a.id)).toEqual(['taken.png']);
  });

  it('hands a rollback that keeps failing to the durable queue, says so, and the queue finishes it', async () => {
    expect((await form('o-roll-down', [['taken.png', 'x']])).status).toBe(201);
    // Failing for longer than the request may spend on it (UPSTREAM_RETRY_BUDGET_MS, 1 s here), but
    // not for all of the queue's five attempts.
    stack.emulator.faults.add({
      method: 'DELETE',
      path: '/docs/o-roll-down/attachments/one.png',
      status: 408,
      times: 5,
    });
    const response = await form('o-roll-down', [
      ['one.png', '1'],
      ['taken.png', '3'],
    ]);
    expect(response.status).toBe(409);
    expect((await json(response)).message).toMatch(/still removing 1 attachment/);
    expect(await stack.cleanupDrained()).toBe(0);
    expect((await stack.listAttachments('o-roll-down')).map((a) => a.id)).toEqual(['taken.png']);
  });
});

describe('a caller that leaves before its answer (finding 3)', () => {
  it('JSON route: the attachment created for it is removed', async () => {
    // Cosmos DB stores the create, then takes 300 ms to answer: the caller is gone by then.
    stack.emulator.faults.add({ method: 'POST', path: '/docs/o-gone/attachments', delayMs: 300, times: 1 });
    const controller = new AbortController();
    const sent = request(stack.route('o-gone'), {
      method: 'POST',
      headers: { ...stack.headers('o-gone'), 'content-type': 'application/json' },
      body: JSON.stringify({
        id: 'gone.jpg',
        contentType: 'image/jpeg',
        media: 'https://cdn.example/gone.jpg',
      }),
      signal: controller.signal,
    }).catch(() => undefined);
    await waitFor(() => stack.requests.some((r) => r.method === 'POST' && r.path.includes('/docs/o-gone/')));
    controller.abort();
    await sent;
    const line = await stack.logLine(
      (l) => l.message === 'request' && String(l.path).includes('/docs/o-gone/'),
    );
    expect(line.code).toBe('RequestAborted');
    expect(await stack.listAttachments('o-gone')).toEqual([]);
  });
});

/** Polls a condition that nothing signals (what the emulator has seen), with a deadline. */
async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
