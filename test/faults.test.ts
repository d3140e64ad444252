import { readdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { json, startStack, type Stack } from './helpers/stack.js';

const REPLAY = 64 * 1024;
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    env: {
      REPLAY_BUFFER_BYTES: String(REPLAY),
      UPSTREAM_RETRY_BUDGET_MS: '2000',
      UPSTREAM_TIMEOUT_MS: '500',
    },
    docs: [
      'f-json',
      'f-small',
      'f-large',
      'f-budget',
      'f-time',
      'f-drop',
      'f-commit',
      'f-449',
      'f-503',
      'f-late',
      'f-408',
      'f-again',
      'f-503-429',
      'f-look',
      'f-shared',
      'f-zero',
    ],
  });
});
afterEach(() => stack.emulator.faults.clear());
afterAll(() => stack.close());

/** Upstream creates (POST .../attachments) the emulator saw for a document. */
function creates(doc: string): number {
  return stack.requests.filter((r) => r.method === 'POST' && r.path.includes(`/docs/${doc}/attachments`))
    .length;
}

function metadataRequest(doc: string, id: string) {
  return fetch(stack.route(doc), {
    method: 'POST',
    headers: { ...stack.headers(doc), 'content-type': 'application/json' },
    body: JSON.stringify({ id, contentType: 'image/png', media: `https://cdn.example/${id}` }),
  });
}

function fileRequest(doc: string, name: string, bytes: number) {
  const form = new FormData();
  form.append('file', new Blob([Buffer.alloc(bytes, 5)], { type: 'application/octet-stream' }), name);
  return fetch(stack.route(doc), { method: 'POST', headers: stack.headers(doc), body: form });
}

describe('throttling (429, 449, 503)', () => {
  it('retries a JSON create after x-ms-retry-after-ms and answers as if nothing happened', async () => {
    stack.emulator.faults.add({
      method: 'POST',
      path: '/docs/f-json/',
      status: 429,
      retryAfterMs: 20,
      times: 2,
    });
    const response = await metadataRequest('f-json', 'thumb');
    expect(response.status).toBe(201);
    expect(creates('f-json')).toBe(3);
    expect((await stack.listAttachments('f-json')).map((a) => a.id)).toEqual(['thumb']);
  });

  it('retries 449 and 503 too', async () => {
    stack.emulator.faults.add({ method: 'POST', path: '/docs/f-449/', status: 449, times: 1 });
    expect((await metadataRequest('f-449', 'a')).status).toBe(201);
    expect(creates('f-449')).toBe(2);
    stack.emulator.faults.add({ method: 'POST', path: '/docs/f-503/', status: 503, times: 1 });
    expect((await metadataRequest('f-503', 'b')).status).toBe(201);
    expect(creates('f-503')).toBe(2);
  });

  it('replays a part that fits the replay buffer, byte for byte', async () => {
    stack.emulator.faults.add({
      method: 'POST',
      path: '/docs/f-small/',
      status: 429,
      retryAfterMs: 10,
      times: 1,
    });
    const response = await fileRequest('f-small', 'small.bin', REPLAY);
    expect(response.status).toBe(201);
    const { attachments } = (await response.json()) as { attachments: { media: string; size: number }[] };
    expect(attachments[0]!.size).toBe(REPLAY);
    expect(await stack.readMedia(attachments[0]!.media)).toEqual(Buffer.alloc(REPLAY, 5));
    expect(creates('f-small')).toBe(2);
  });

  it('answers 503 with Retry-After for a throttled part too large to replay, keeping nothing', async () => {
    stack.emulator.faults.add({
      method: 'POST',
      path: '/docs/f-large/',
      status: 429,
      retryAfterMs: 3000,
      times: 1,
    });
    const before = await readdir(stack.emulator.mediaDir);
    const response = await fileRequest('f-large', 'large.bin', REPLAY + 1);
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('3');
    expect(await json(response)).toMatchObject({ code: 'UpstreamUnavailable' });
    expect(creates('f-large')).toBe(1);
    expect(await stack.listAttachments('f-large')).toEqual([]);
    expect(await readdir(stack.emulator.mediaDir)).toEqual(before);
  });

  it('never sends a throttled part again when it was too large to keep, however soon it may be retried', async () => {
    stack.emulator.faults.add({
      method: 'POST',
      path: '/docs/f-large/',
      status: 429,
      retryAfterMs: 10,
      times: 1,
    });
    const before = creates('f-large');
    const response = await fileRequest('f-large', 'large-soon.bin', REPLAY * 3);
    expect(response.status).toBe(503);
    expect(creates('f-large')).toBe(before + 1);
    expect(await stack.listAttachments('f-large')).toEqual([]);
  });

  it('replays a part that was throttled before it was all sent, reading the rest from the caller', async () => {
    // The emulator answers 429 before reading the body: the first attempt carried only some of it.
    stack.emulator.faults.add({
      method: 'POST',
      path: '/docs/f-small/',
      status: 429,
      retryAfterMs: 10,
      times: 1,
    });
    const bytes = Buffer.from(Array.from({ length: REPLAY }, (_, i) => i % 253));
    const form = new FormData();
    form.append('file', new Blob([bytes]), 'early-answer.bin');
    const response = await fetch(stack.route('f-small'), {
      method: 'POST',
      headers: stack.headers('f-small'),
      body: form,
    });
    expect(response.status).toBe(201);
    const { attachments } = (await response.json()) as { attachments: { media: string; sha256: string }[] };
    expect(await stack.readMedia(attachments[0]!.media)).toEqual(bytes);
  });

  it('gives up with 503 and Retry-After once UPSTREAM_RETRY_BUDGET_MS is spent', async () => {
    stack.emulator.faults.add({ method: 'POST', path: '/docs/f-budget/', status: 429, retryAfterMs: 800 });
    const response = await metadataRequest('f-budget', 'never');
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('1');
    // 2000 ms of budget holds two waits of 800 ms: three attempts in all.
    expect(creates('f-budget')).toBe(3);
    expect(await stack.listAttachments('f-budget')).toEqual([]);
  });
});

describe('broken and slow connections', () => {
  it('answers 504 when Cosmos DB answers too late, and undoes the create it may have made', async () => {
    stack.emulator.faults.add({ method: 'POST', path: '/docs/f-time/', delayMs: 1500, times: 1 });
    const response = await fileRequest('f-time', 'slow.bin', 1000);
    expect(response.status).toBe(504);
    expect(await json(response)).toMatchObject({ code: 'UpstreamTimeout' });
    // Unmarked managed media is judged once its grace period is over, by its bytes.
    expect(await stack.settled('f-time', 'slow.bin')).toBe('undone');
    expect(await stack.listAttachments('f-time')).toEqual([]);
  });

  it('answers 502 when the connection drops mid-request, keeps nothing, and serves the next request', async () => {
    stack.emulator.faults.add({ method: 'POST', path: '/docs/f-drop/', dropAfterBytes: REPLAY, times: 1 });
    const before = await readdir(stack.emulator.mediaDir);
    const response = await fileRequest('f-drop', 'cut.bin', REPLAY * 4);
    expect(response.status).toBe(502);
    expect(await json(response)).toMatchObject({ code: 'UpstreamUnreachable' });
    expect(await stack.listAttachments('f-drop')).toEqual([]);
    expect(await readdir(stack.emulator.mediaDir)).toEqual(before);
    expect((await fileRequest('f-drop', 'next.bin', REPLAY * 4)).status).toBe(201);
  });

  it('undoes a create that Cosmos DB stored before the connection dropped', async () => {
    stack.emulator.faults.add({ method: 'POST', path: '/docs/f-commit/', dropAfterCommit: true, times: 1 });
    const form = new FormData();
    form.append('a', new Blob(['first']), 'first.txt');
    form.append('b', new Blob(['second']), 'second.txt');
    const response = await fetch(stack.route('f-commit'), {
      method: 'POST',
      headers: stack.headers('f-commit'),
      body: form,
    });
    expect(response.status).toBe(502);
    expect(await stack.settled('f-commit', 'first.txt')).toBe('undone');
    expect(await stack.listAttachments('f-commit')).toEqual([]);
  });

  it('leaves an older attachment of the same id alone after an unknown outcome', async () => {
    const existing = stack.emulator.store.createAttachment(
      { db: 'demo', coll: 'items', doc: 'f-commit', partitionKey: '["f-commit"]' },
      { id: 'theirs.txt', contentType: 'text/plain', media: 'https://x/theirs' },
    );
    // Make the existing attachment an hour old: clearly not made by the request below.
    existing._ts -= 3600;
    stack.emulator.faults.add({ method: 'POST', path: '/docs/f-commit/', dropAfterBytes: 0, times: 1 });
    const form = new FormData();
    form.append('a', new Blob(['x'], { type: 'text/plain' }), 'theirs.txt');
    const response = await fetch(stack.route('f-commit'), {
      method: 'POST',
      headers: stack.headers('f-commit'),
      body: form,
    });
    expect(response.status).toBe(502);
    expect(await stack.settled('f-commit', 'theirs.txt')).toBe('kept');
    expect((await stack.listAttachments('f-commit')).map((a) => a.id)).toEqual(['theirs.txt']);
  });
});

describe('creates whose outcome is unknown', () => {
  it('undoes a create Cosmos DB stores after the bridge stopped waiting', async () => {
    // The request sits unread past UPSTREAM_TIMEOUT_MS (500 ms), then is stored.
    stack.emulator.faults.add({ method: 'POST', path: '/docs/f-late/', stallMs: 1200, times: 1 });
    const response = await metadataRequest('f-late', 'late');
    expect(response.status).toBe(504);
    expect(await stack.settled('f-late', 'late')).toBe('undone');
    const undone = await stack.logLine((l) => l.settled === 'undone' && l.doc === 'f-late');
    expect(undone.look).toBeGreaterThan(0); // found by a later look, from the queue
    expect(await stack.listAttachments('f-late')).toEqual([]);
  });

  it('answers 504 for a 408 from Cosmos DB, and undoes what that request stored', async () => {
    stack.emulator.faults.add({ method: 'POST', path: '/docs/f-408/', statusAfterCommit: 408, times: 1 });
    const form = new FormData();
    form.append('a', new Blob(['one']), 'one.txt');
    form.append('b', new Blob(['two']), 'two.txt');
    const response = await fetch(stack.route('f-408'), {
      method: 'POST',
      headers: stack.headers('f-408'),
      body: form,
    });
    expect(response.status).toBe(504);
    expect(await json(response)).toMatchObject({ code: 'UpstreamTimeout' });
    expect(await stack.settled('f-408', 'one.txt')).toBe('undone');
    expect(await stack.listAttachments('f-408')).toEqual([]);
  });

  it('recognises its own first attempt when a retry after a 503 meets a 409', async () => {
    stack.emulator.faults.add({ method: 'POST', path: '/docs/f-again/', statusAfterCommit: 503, times: 1 });
    const response = await metadataRequest('f-again', 'stored-first-time');
    expect(response.status).toBe(201);
    expect(creates('f-again')).toBe(2);
    expect((await stack.listAttachments('f-again')).map((a) => a.id)).toEqual(['stored-first-time']);
  });
});

describe('creates whose outcome is unknown, continued', () => {
  it('undoes a first attempt stored behind a 503 when the retry then runs out of budget', async () => {
    stack.emulator.faults.add({
      method: 'POST',
      path: '/docs/f-503-429/',
      statusAfterCommit: 503,
      times: 1,
    });
    stack.emulator.faults.add({
      method: 'POST',
      path: '/docs/f-503-429/',
      status: 429,
      retryAfterMs: 5000,
      times: 1,
    });
    const response = await metadataRequest('f-503-429', 'maybe');
    expect(response.status).toBe(503);
    expect(creates('f-503-429')).toBe(2);
    expect(await stack.settled('f-503-429', 'maybe')).toBe('undone');
    expect(await stack.listAttachments('f-503-429')).toEqual([]);
  });

  it('looks again after a lookup that failed, and undoes what it then finds', async () => {
    stack.emulator.faults.add({ method: 'POST', path: '/docs/f-look/', dropAfterCommit: true, times: 1 });
    stack.emulator.faults.add({
      method: 'GET',
      path: '/docs/f-look/attachments/',
      status: 500,
      times: 1,
    });
    const response = await metadataRequest('f-look', 'looked-for');
    expect(response.status).toBe(502);
    expect(await stack.settled('f-look', 'looked-for')).toBe('undone');
    expect(stack.requests.filter((r) => r.method === 'GET' && r.path.includes('/docs/f-look/')).length).toBe(
      2,
    );
    expect(await stack.listAttachments('f-look')).toEqual([]);
  });
});

describe('two callers, one file name, one document', () => {
  const shared = (name: string, bytes: Buffer) => {
    const form = new FormData();
    form.append('file', new Blob([bytes], { type: 'image/png' }), name);
    return fetch(stack.route('f-shared'), { method: 'POST', headers: stack.headers('f-shared'), body: form });
  };

  async function storedBytes(name: string): Promise<Buffer> {
    const attachment = (await stack.listAttachments('f-shared')).find((a) => a.id === name);
    return stack.readMedia((attachment as unknown as { media: string }).media);
  }

  it("never claims the other caller's attachment when a retry after a 503 meets a 409", async () => {
    const theirs = Buffer.alloc(1000, 1);
    expect((await shared('claimed.png', theirs)).status).toBe(201);
    // Ours is answered 503 before it was read (nothing stored), then meets theirs on the retry.
    stack.emulator.faults.add({ method: 'POST', path: '/docs/f-shared/', status: 503, times: 1 });
    const ours = await shared('claimed.png', Buffer.alloc(1000, 2));
    expect(ours.status).toBe(409);
    expect(await storedBytes('claimed.png')).toEqual(theirs);
  });

  it("never deletes the other caller's attachment when settling an unknown outcome", async () => {
    const theirs = Buffer.alloc(1000, 1);
    expect((await shared('settled.png', theirs)).status).toBe(201);
    // A 503 (nothing stored), then throttling past the budget: ours is an unknown outcome to settle.
    stack.emulator.faults.add({ method: 'POST', path: '/docs/f-shared/', status: 503, times: 1 });
    stack.emulator.faults.add({
      method: 'POST',
      path: '/docs/f-shared/',
      status: 429,
      retryAfterMs: 5000,
      times: 1,
    });
    expect((await shared('settled.png', Buffer.alloc(1000, 2))).status).toBe(503);
    expect(await storedBytes('settled.png')).toEqual(theirs);
  });
});

describe('throttling without a pause', () => {
  it('gives up after ten attempts however much budget is left', async () => {
    stack.emulator.faults.add({ method: 'POST', path: '/docs/f-zero/', status: 429, retryAfterMs: 0 });
    const response = await metadataRequest('f-zero', 'busy');
    expect(response.status).toBe(503);
    expect(creates('f-zero')).toBe(10);
  });
});

describe('early answers from Cosmos DB to large and slow uploads', () => {
  const MIB = 1024 * 1024;
  let replaying: Stack;
  beforeAll(async () => {
    // The default REPLAY_BUFFER_BYTES (4 MiB); a short budget, which a slow caller's upload must not spend.
    replaying = await startStack({
      env: { UPSTREAM_RETRY_BUDGET_MS: '1000' },
      docs: ['e-drain', 'e-close', 'e-slow', 'e-after'],
    });
  });
  afterEach(() => replaying.emulator.faults.clear());
  afterAll(() => replaying.close());

  const pattern = (bytes: number) => Buffer.from(Array.from({ length: bytes }, (_, i) => (i * 7) % 251));

  async function upload(doc: string, bytes: Buffer): Promise<Response> {
    const form = new FormData();
    form.append('file', new Blob([bytes]), `${doc}.bin`);
    return fetch(replaying.route(doc), { method: 'POST', headers: replaying.headers(doc), body: form });
  }

  /** A caller on a slow network: the multipart body in `pieces` writes, `gapMs` apart. */
  async function slowUpload(doc: string, bytes: Buffer, pieces: number, gapMs: number) {
    const boundary = 'slow-boundary';
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="${doc}.bin"\r\n\r\n`;
    const body = Buffer.concat([Buffer.from(head), bytes, Buffer.from(`\r\n--${boundary}--\r\n`)]);
    const request = httpRequest(replaying.route(doc), {
      method: 'POST',
      headers: { ...replaying.headers(doc), 'content-type': `multipart/form-data; boundary=${boundary}` },
    });
    const answered = new Promise<{ status: number; body: string }>((resolve, reject) => {
      request.once('response', (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.once('end', () => resolve({ status: response.statusCode ?? 0, body: text }));
      });
      request.once('error', reject);
    });
    const size = Math.ceil(body.length / pieces);
    for (let at = 0; at < body.length; at += size) {
      request.write(body.subarray(at, at + size));
      await delay(gapMs); // the caller's pace, not synchronisation
    }
    request.end();
    return answered;
  }

  async function expectStored(doc: string, bytes: Buffer, body: string) {
    const { attachments } = JSON.parse(body) as { attachments: { media: string; size: number }[] };
    expect(attachments[0]!.size).toBe(bytes.length);
    expect((await replaying.readMedia(attachments[0]!.media)).equals(bytes)).toBe(true);
  }

  it('replays a 3 MiB part throttled before it was sent, while Cosmos DB reads and drops the rest', async () => {
    replaying.emulator.faults.add({
      method: 'POST',
      path: '/docs/e-drain/',
      status: 429,
      retryAfterMs: 10,
      times: 1,
    });
    const bytes = pattern(3 * MIB);
    const response = await upload('e-drain', bytes);
    expect(response.status).toBe(201);
    await expectStored('e-drain', bytes, await response.text());
  });

  it('replays it too when Cosmos DB closes the connection right after its early answer', async () => {
    replaying.emulator.faults.add({
      method: 'POST',
      path: '/docs/e-close/',
      status: 429,
      retryAfterMs: 10,
      closeEarly: true,
      times: 1,
    });
    const bytes = pattern(3 * MIB);
    const response = await upload('e-close', bytes);
    expect(response.status).toBe(201);
    await expectStored('e-close', bytes, await response.text());
    // The fault was met: the first attempt was answered early and cut off. Whether undici reads the 429
    // before it sees the broken socket is a race; either way the part had to be sent again.
    expect(replaying.emulator.faults.list().some((r) => r.path === '/docs/e-close/')).toBe(false);
  });

  it('replays an early answer to a slow caller, however long the rest of the part takes to arrive', async () => {
    replaying.emulator.faults.add({
      method: 'POST',
      path: '/docs/e-slow/',
      status: 429,
      retryAfterMs: 10,
      times: 1,
    });
    const bytes = pattern(MIB);
    const { status, body } = await slowUpload('e-slow', bytes, 10, 200);
    expect(status).toBe(201);
    await expectStored('e-slow', bytes, body);
  });

  it('replays a throttle that came only after a slow caller had sent everything', async () => {
    replaying.emulator.faults.add({
      method: 'POST',
      path: '/docs/e-after/',
      status: 429,
      retryAfterMs: 10,
      afterBody: true,
      times: 1,
    });
    const bytes = pattern(MIB);
    const { status, body } = await slowUpload('e-after', bytes, 10, 200);
    expect(status).toBe(201);
    await expectStored('e-after', bytes, body);
  });
});

describe('slow callers', () => {
  it('never hold up small requests or rollbacks, even with one upload connection', async () => {
    const narrow = await startStack({ env: { UPSTREAM_CONNECTIONS: '1', REPLAY_BUFFER_BYTES: '0' } });
    const boundary = 'slow';
    const slow = httpRequest(narrow.route(), {
      method: 'POST',
      headers: {
        ...narrow.headers(),
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'transfer-encoding': 'chunked',
      },
    });
    slow.on('error', () => {});
    try {
      // A caller on a bad network: the part has started streaming upstream (past the 64 KiB a part
      // must have before it takes an upload connection), and then nothing comes.
      slow.write(
        `--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="slow.bin"\r\n\r\n${'x'.repeat(70_000)}`,
      );
      await vi.waitFor(() =>
        expect(narrow.requests.some((r) => r.method === 'POST' && r.path.includes('/attachments'))).toBe(
          true,
        ),
      );
      const quick = fetch(narrow.route(), {
        method: 'POST',
        headers: { ...narrow.headers(), 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'quick', contentType: 'image/png', media: 'https://x/quick' }),
      });
      const outcome = await Promise.race([
        quick.then((r) => r.status),
        delay(10_000).then(() => 'stuck behind the slow upload'),
      ]);
      expect(outcome).toBe(201);
    } finally {
      slow.destroy();
      await narrow.close();
    }
  });
});

describe('key rotation', () => {
  it('falls back to COSMOS_KEY_SECONDARY on a 401 and prefers it from then on', async () => {
    const rotated = await startStack({
      env: (emulator) => ({
        COSMOS_KEY: Buffer.alloc(64, 1).toString('base64'),
        COSMOS_KEY_SECONDARY: emulator.key,
      }),
    });
    try {
      const first = await fetch(rotated.route(), {
        method: 'POST',
        headers: { ...rotated.headers(), 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'one', contentType: 'a/b', media: 'x' }),
      });
      expect(first.status).toBe(201);
      const attempts = () => rotated.requests.filter((r) => r.method === 'POST').length;
      expect(attempts()).toBe(2);
      const second = await fetch(rotated.route(), {
        method: 'POST',
        headers: { ...rotated.headers(), 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'two', contentType: 'a/b', media: 'x' }),
      });
      expect(second.status).toBe(201);
      expect(attempts()).toBe(3);
      expect(rotated.logs.some((line) => line.includes('switching to the other configured key'))).toBe(true);
    } finally {
      await rotated.close();
    }
  });

  it('sends a large file part again with the other key', async () => {
    const rotated = await startStack({
      env: (emulator) => ({
        COSMOS_KEY: Buffer.alloc(64, 1).toString('base64'),
        COSMOS_KEY_SECONDARY: emulator.key,
      }),
    });
    try {
      const bytes = Buffer.from(Array.from({ length: 1024 * 1024 }, (_, i) => (i * 13) % 256));
      const form = new FormData();
      form.append('file', new Blob([bytes]), 'rotated.bin');
      const response = await fetch(rotated.route(), {
        method: 'POST',
        headers: rotated.headers(),
        body: form,
      });
      expect(response.status).toBe(201);
      const { attachments } = (await response.json()) as { attachments: { media: string }[] };
      expect((await rotated.readMedia(attachments[0]!.media)).equals(bytes)).toBe(true);
    } finally {
      await rotated.close();
    }
  });

  it('answers 502 when both keys are refused', async () => {
    const wrong = await startStack({
      env: {
        COSMOS_KEY: Buffer.alloc(64, 1).toString('base64'),
        COSMOS_KEY_SECONDARY: Buffer.alloc(64, 2).toString('base64'),
      },
    });
    try {
      const response = await fetch(wrong.route(), {
        method: 'POST',
        headers: { ...wrong.headers(), 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'one', contentType: 'a/b', media: 'x' }),
      });
      expect(response.status).toBe(502);
      expect(await json(response)).toMatchObject({ code: 'UpstreamAuthFailed' });
    } finally {
      await wrong.close();
    }
  });
});
