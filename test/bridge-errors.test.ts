import { once } from 'node:events';
import { readdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { request } from 'undici';
import { FUNCTION_KEY, json, startStack, type Stack } from './helpers/stack.js';

const MAX_PART = 64 * 1024;
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    // Parts over 1 KiB stream upstream once instead of being held for replay: the streaming path.
    env: {
      MAX_PART_BYTES: String(MAX_PART),
      MAX_FIELD_BYTES: '1024',
      MAX_FILES: '3',
      REPLAY_BUFFER_BYTES: '1024',
    },
    docs: ['e-json', 'e-multi', 'e-limit', 'e-roll', 'e-raw', 'e-gone', 'e-pk'],
  });
});
afterAll(() => stack.close());

async function post(doc: string, init: { headers?: Record<string, string>; body?: RequestInit['body'] }) {
  const response = await fetch(stack.route(doc), {
    method: 'POST',
    ...init,
    headers: { ...stack.headers(doc), ...init.headers },
  });
  return { status: response.status, body: await json(response), headers: response.headers };
}

function multipart(boundary: string, parts: string[]): string {
  return parts.map((part) => `--${boundary}\r\n${part}\r\n`).join('') + `--${boundary}--\r\n`;
}

const filePart = (name: string, content: string, type = 'text/plain') =>
  `Content-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: ${type}\r\n\r\n${content}`;

/** Every stored media file; nothing may be left behind by a failed request. */
async function mediaFiles(): Promise<string[]> {
  return (await readdir(stack.emulator.mediaDir)).sort();
}

describe('malformed requests', () => {
  it.each([
    ['text/plain', 'hello', 415, 'UnsupportedMediaType'],
    ['', 'hello', 415, 'UnsupportedMediaType'],
    ['multipart/form-data', 'x', 400, 'MissingBoundary'],
    [
      'multipart/form-data; boundary=zz',
      '--zz\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\nabc',
      400,
      'MalformedMultipart',
    ],
    ['multipart/form-data; boundary=zz', 'not multipart at all', 400, 'MalformedMultipart'],
    ['multipart/form-data; boundary=zz', '--zz--\r\n', 400, 'NoAttachments'],
    ['application/json', '{"id": ', 400, 'InvalidJson'],
    ['application/json', '[1,2]', 400, 'InvalidJson'],
    ['application/json', '{"contentType":"a/b","media":"x"}', 400, 'InvalidId'],
    ['application/json', '{"id":"a/b","contentType":"a/b","media":"x"}', 400, 'InvalidId'],
    ['application/json', '{"id":"trailing ","contentType":"a/b","media":"x"}', 400, 'InvalidId'],
    ['application/json', '{"id":"..","contentType":"a/b","media":"x"}', 400, 'InvalidId'],
    [
      'application/json',
      '{"id":"w","contentType":"a/b","media":"x","webhookId":"msg_1"}',
      400,
      'InvalidJson',
    ],
  ])('%s %j answers %i %s', async (contentType, body, status, code) => {
    const before = await mediaFiles();
    const result = await post('e-json', {
      headers: contentType ? { 'content-type': contentType } : {},
      body,
    });
    expect(result.status).toBe(status);
    expect(result.body).toEqual({ code, message: expect.any(String) as string });
    expect(await mediaFiles()).toEqual(before);
  });

  it('answers 400 for a file part without a file name', async () => {
    const boundary = 'nb';
    const result = await post('e-multi', {
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: multipart(boundary, [
        'Content-Disposition: form-data; name="file"; filename=""\r\nContent-Type: application/octet-stream\r\n\r\nabc',
      ]),
    });
    expect(result).toMatchObject({ status: 400, body: { code: 'MissingFilename' } });
  });

  it('answers 400 rather than silently dropping a part busboy cannot read, keeping nothing', async () => {
    const boundary = 'drop';
    for (const disposition of [
      `form-data; name="b"; filename*=x-mac-cyrillic''two.txt`,
      `form-data; name="b"; filename="a.jpg"; filename*=utf-8''`,
      `attachment; filename="not-form-data.txt"`,
    ]) {
      const result = await post('e-multi', {
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
        body: multipart(boundary, [
          filePart('one.txt', 'first'),
          `Content-Disposition: ${disposition}\r\nContent-Type: text/plain\r\n\r\nsecond`,
        ]),
      });
      expect(result, disposition).toMatchObject({ status: 400, body: { code: 'MalformedMultipart' } });
    }
    const untyped = await post('e-multi', {
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: multipart(boundary, [
        `Content-Disposition: form-data; name="photo"\r\nContent-Type: image/jpeg\r\n\r\nJFIF`,
      ]),
    });
    expect(untyped).toMatchObject({ status: 400, body: { code: 'MissingFilename' } });
    expect((await stack.listAttachments('e-multi')).map((a) => a.id)).not.toContain('one.txt');
  });

  it('answers 400 for ids Cosmos DB would refuse, before anything is sent upstream', async () => {
    const upstreamBefore = stack.requests.length;
    const bad = await post('e-multi', {
      headers: { 'content-type': 'application/octet-stream', slug: 'a%3Fb' },
      body: 'x',
    });
    expect(bad).toMatchObject({ status: 400, body: { code: 'InvalidId' } });
    // An attachment named ".." would make its delete URL the document's own.
    const dots = await post('e-multi', { headers: { 'content-type': 'text/plain', slug: '..' }, body: 'x' });
    expect(dots).toMatchObject({ status: 400, body: { code: 'InvalidId' } });
    const malformed = await post('e-multi', {
      headers: { 'content-type': 'text/plain', slug: '%E0%A4%A' },
      body: 'x',
    });
    expect(malformed).toMatchObject({ status: 400, body: { code: 'InvalidHeader' } });
    const badPath = await fetch(`${stack.host.url}/api/dbs/demo/colls/items/docs/a%252Fb/attachments`, {
      method: 'POST',
      headers: stack.headers('e-multi'),
    });
    expect(badPath.status).toBe(400);
    expect(stack.requests.length).toBe(upstreamBefore);
  });

  it('answers 400 for a malformed partition key header, or a field that disagrees with it', async () => {
    const header = await post('e-pk', {
      headers: { 'x-ms-documentdb-partitionkey': 'e-pk', 'content-type': 'text/plain', slug: 'a' },
      body: 'x',
    });
    expect(header).toMatchObject({ status: 400, body: { code: 'InvalidPartitionKey' } });
    const data = new FormData();
    data.append('partitionKey', 'someone-else');
    data.append('f', new Blob(['x']), 'x.txt');
    const disagree = await post('e-pk', { body: data });
    expect(disagree).toMatchObject({ status: 400, body: { code: 'InvalidPartitionKey' } });
    expect(await stack.listAttachments('e-pk')).toEqual([]);
  });
});

describe('limits', () => {
  it('answers 413 as soon as a part crosses MAX_PART_BYTES, aborting the upstream upload', async () => {
    const before = await mediaFiles();
    const boundary = 'lim';
    let answered!: () => void;
    const answer = new Promise<void>((resolve) => (answered = resolve));
    async function* body() {
      yield Buffer.from(`--${boundary}\r\n${filePart('big.bin', '')}`);
      yield Buffer.alloc(MAX_PART + 1, 1);
      // Send nothing more until the bridge has answered: the 413 must not wait for the end of the body.
      await answer;
      yield Buffer.from(`\r\n--${boundary}--\r\n`);
    }
    const responsePromise = request(stack.route('e-limit'), {
      method: 'POST',
      headers: { ...stack.headers('e-limit'), 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: Readable.from(body()),
    });
    const response = await responsePromise;
    answered();
    expect(response.statusCode).toBe(413);
    expect(await response.body.json()).toMatchObject({
      code: 'PayloadTooLarge',
      message: expect.stringMatching(/MAX_PART_BYTES/) as string,
    });
    expect(await stack.listAttachments('e-limit')).toEqual([]);
    expect(await mediaFiles()).toEqual(before);
  });

  it('accepts a part of exactly MAX_PART_BYTES', async () => {
    const data = new FormData();
    data.append('f', new Blob([Buffer.alloc(MAX_PART, 2)]), 'exact.bin');
    const result = await post('e-limit', { body: data });
    expect(result.status).toBe(201);
    expect(result.body).toMatchObject({ attachments: [{ id: 'exact.bin', size: MAX_PART }] });
  });

  it('answers 413 for a raw body over MAX_PART_BYTES, declared or streamed', async () => {
    const declared = await post('e-raw', {
      headers: { 'content-type': 'image/png', slug: 'big.png' },
      body: Buffer.alloc(MAX_PART + 1),
    });
    expect(declared).toMatchObject({ status: 413, body: { code: 'PayloadTooLarge' } });
    const streamed = await request(stack.route('e-raw'), {
      method: 'POST',
      headers: { ...stack.headers('e-raw'), 'content-type': 'image/png', slug: 'big.png' },
      body: Readable.from(
        (function* () {
          for (let i = 0; i < 4; i++) yield Buffer.alloc(MAX_PART / 2);
        })(),
      ),
    });
    expect(streamed.statusCode).toBe(413);
    await streamed.body.dump();
    expect(await stack.listAttachments('e-raw')).toEqual([]);
  });

  it('answers 413 naming the limit for too many files and an oversized field', async () => {
    const files = new FormData();
    for (let i = 0; i < 4; i++) files.append('f', new Blob(['x']), `f${i}.txt`);
    const tooMany = await post('e-limit', { body: files });
    expect(tooMany).toMatchObject({
      status: 413,
      body: { code: 'PayloadTooLarge', message: expect.stringMatching(/3 files/) as string },
    });
    const field = new FormData();
    field.append('metadata', JSON.stringify({ id: 'm', contentType: 'a/b', media: 'x'.repeat(2000) }));
    const bigField = await post('e-limit', { body: field });
    expect(bigField).toMatchObject({
      status: 413,
      body: { code: 'PayloadTooLarge', message: expect.stringMatching(/metadata/) as string },
    });
    const bigJson = await post('e-limit', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'm', contentType: 'a/b', media: 'x'.repeat(2000) }),
    });
    expect(bigJson).toMatchObject({ status: 413, body: { code: 'PayloadTooLarge' } });
    expect((await stack.listAttachments('e-limit')).map((a) => a.id)).toEqual(['exact.bin']);
  });
});

describe('request size and header limits', () => {
  it('answers 413 naming MAX_REQUEST_BYTES when the parts together are too large, keeping none', async () => {
    const capped = await startStack({
      env: { MAX_PART_BYTES: '10000', MAX_REQUEST_BYTES: '15000', REPLAY_BUFFER_BYTES: '0' },
    });
    try {
      const form = new FormData();
      form.append('a', new Blob([Buffer.alloc(8000)]), 'a.bin');
      form.append('b', new Blob([Buffer.alloc(8000)]), 'b.bin');
      const response = await fetch(capped.route(), { method: 'POST', headers: capped.headers(), body: form });
      expect(response.status).toBe(413);
      expect(await json(response)).toMatchObject({
        code: 'PayloadTooLarge',
        message: expect.stringMatching(/MAX_REQUEST_BYTES/) as string,
      });
      expect(await capped.listAttachments()).toEqual([]);
      const declared = await fetch(capped.route(), {
        method: 'POST',
        headers: { ...capped.headers(), 'content-type': 'image/png', slug: 'x.png' },
        body: Buffer.alloc(20000),
      });
      expect(declared.status).toBe(413);
    } finally {
      await capped.close();
    }
  });

  it('answers 431 for request headers over 32 KiB (the host, as Kestrel does), and 400 for a part header section that never ends', async () => {
    const huge = await fetch(stack.route('e-multi'), {
      method: 'POST',
      headers: { ...stack.headers('e-multi'), 'x-padding': 'x'.repeat(40 * 1024) },
      body: 'x',
    });
    expect(huge.status).toBe(431);
    const boundary = 'hdr';
    const partHeaders = `Content-Disposition: form-data; name="f"; filename="a.txt"\r\nX-Pad: ${'p'.repeat(20 * 1024)}\r\n\r\nabc`;
    const result = await post('e-multi', {
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: multipart(boundary, [partHeaders]),
    });
    expect(result).toMatchObject({
      status: 400,
      body: { code: 'MalformedMultipart', message: expect.stringMatching(/16 KiB/) as string },
    });
  });
});

describe('nothing half-done', () => {
  it('deletes the attachments a request created when a later part fails (409), answering with that failure', async () => {
    stack.emulator.store.createAttachment(
      { db: 'demo', coll: 'items', doc: 'e-roll', partitionKey: '["e-roll"]' },
      { id: 'taken.txt', contentType: 'text/plain', media: 'https://x/taken' },
    );
    const before = await mediaFiles();
    const data = new FormData();
    data.append('a', new Blob(['first']), 'first.txt');
    data.append('metadata', JSON.stringify({ id: 'meta', contentType: 'a/b', media: 'https://x/m' }));
    data.append('b', new Blob(['second']), 'taken.txt');
    const result = await post('e-roll', { body: data });
    expect(result.status).toBe(409);
    expect(result.body).toEqual({
      code: 'Conflict',
      message: expect.stringContaining('taken.txt') as string,
    });
    expect((await stack.listAttachments('e-roll')).map((a) => a.id)).toEqual(['taken.txt']);
    expect(await mediaFiles()).toEqual(before);
  });

  it('rolls back earlier parts when a later part is too large', async () => {
    const data = new FormData();
    data.append('a', new Blob(['small']), 'small.txt');
    data.append('b', new Blob([Buffer.alloc(MAX_PART + 10)]), 'large.bin');
    const result = await post('e-roll', { body: data });
    expect(result).toMatchObject({ status: 413, body: { code: 'PayloadTooLarge' } });
    expect((await stack.listAttachments('e-roll')).map((a) => a.id)).toEqual(['taken.txt']);
  });

  it('fails cleanly when a part crosses the limit before the previous part finished uploading', async () => {
    // One small body, so busboy meets the oversized second part while the first is still queued.
    const tiny = await startStack({ env: { MAX_PART_BYTES: '1000' } });
    try {
      const boundary = 'one-chunk';
      const body = multipart(boundary, [
        filePart('first.txt', 'ok'),
        filePart('second.bin', 'z'.repeat(3000)),
      ]);
      const response = await fetch(tiny.route(), {
        method: 'POST',
        headers: { ...tiny.headers(), 'content-type': `multipart/form-data; boundary=${boundary}` },
        body: Buffer.from(body),
      });
      expect(response.status).toBe(413);
      expect(await json(response)).toMatchObject({ code: 'PayloadTooLarge' });
      expect(await tiny.listAttachments()).toEqual([]);
    } finally {
      await tiny.close();
    }
  });

  it('rolls back when the partitionKey field comes after a file', async () => {
    const data = new FormData();
    data.append('a', new Blob(['x']), 'early.txt');
    data.append('partitionKey', 'e-roll');
    const result = await post('e-roll', { body: data });
    expect(result).toMatchObject({ status: 400, body: { code: 'InvalidPartitionKey' } });
    expect((await stack.listAttachments('e-roll')).map((a) => a.id)).toEqual(['taken.txt']);
  });

  it('passes 404 through for a missing parent document', async () => {
    const data = new FormData();
    data.append('a', new Blob(['x']), 'x.txt');
    const response = await fetch(stack.route('no-such-doc'), {
      method: 'POST',
      headers: stack.headers('no-such-doc'),
      body: data,
    });
    expect(response.status).toBe(404);
    expect(await json(response)).toMatchObject({ code: 'NotFound' });
  });

  it('aborts the upload and deletes what it created when the caller disconnects mid-body', async () => {
    const before = await mediaFiles();
    const boundary = 'gone';
    const req = httpRequest(stack.route('e-gone'), {
      method: 'POST',
      headers: {
        ...stack.headers('e-gone'),
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'transfer-encoding': 'chunked',
      },
    });
    req.on('error', () => {});
    req.write(`--${boundary}\r\n${filePart('done.txt', 'complete part')}\r\n`);
    req.write(`--${boundary}\r\n${filePart('cut.bin', 'x'.repeat(10_000))}`);
    // Wait until the second part is streaming upstream, then vanish.
    await vi.waitFor(() => {
      expect(stack.requests.filter((r) => r.path.includes('/docs/e-gone/attachments')).length).toBe(2);
    });
    const logsBefore = stack.logs.length;
    req.destroy();
    await vi.waitFor(() => {
      expect(
        stack.logs
          .slice(logsBefore)
          .some((line) => line.includes('e-gone') && line.includes('RequestAborted')),
      ).toBe(true);
    });
    expect(await stack.listAttachments('e-gone')).toEqual([]);
    expect(await mediaFiles()).toEqual(before);
    // The bridge and its upstream pool carry on as normal.
    const data = new FormData();
    data.append('a', new Blob(['after']), 'after.txt');
    expect((await post('e-gone', { body: data })).status).toBe(201);
  });
});

describe('upstream failures', () => {
  async function bridgeTo(endpoint: string, env: Record<string, string> = {}) {
    return startStack({ env: { COSMOS_ENDPOINT: endpoint, ...env } });
  }

  it('answers 502 when Cosmos DB cannot be reached', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    const other = await bridgeTo(`http://127.0.0.1:${port}`);
    try {
      const response = await fetch(other.route(), {
        method: 'POST',
        headers: { ...other.headers(), 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'x', contentType: 'a/b', media: 'y' }),
      });
      expect(response.status).toBe(502);
      expect(await json(response)).toMatchObject({ code: 'UpstreamUnreachable' });
      // The log names the host it tried and why, at warning level; the caller's answer does not.
      const trouble = await other.logLine((l) => l.upstream === 'cosmos');
      expect(trouble).toMatchObject({ level: 'warn', cause: 'ECONNREFUSED' });
      expect(trouble.message).toContain(`127.0.0.1:${port}`);
      expect((await other.logLine((l) => l.message === 'request')).level).toBe('warn');
    } finally {
      await other.close();
    }
  });

  it('answers 504 when Cosmos DB accepts the connection but never answers', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => {
      sockets.push(socket);
      socket.resume();
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const other = await bridgeTo(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`, {
      UPSTREAM_TIMEOUT_MS: '300',
    });
    try {
      const data = new FormData();
      data.append('a', new Blob(['x']), 'x.txt');
      const response = await fetch(other.route(), { method: 'POST', headers: other.headers(), body: data });
      expect(response.status).toBe(504);
      expect(await json(response)).toMatchObject({ code: 'UpstreamTimeout' });
    } finally {
      await other.close();
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it('answers 502, not 401, when Cosmos DB refuses the bridge key, and never shows a key', async () => {
    const wrongKey = Buffer.alloc(64, 9).toString('base64');
    const other = await startStack({ env: { COSMOS_KEY: wrongKey } });
    try {
      const response = await fetch(other.route(), {
        method: 'POST',
        headers: { ...other.headers(), 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'x', contentType: 'a/b', media: 'y' }),
      });
      expect(response.status).toBe(502);
      const text = await response.text();
      expect(JSON.parse(text)).toMatchObject({ code: 'UpstreamAuthFailed' });
      // A refused account key is the operator's problem: an error in the log.
      expect(
        (await other.logLine((l) => l.message === 'request' && l.code === 'UpstreamAuthFailed')).level,
      ).toBe('error');
      for (const secret of [wrongKey, other.emulator.key, FUNCTION_KEY]) {
        expect(text).not.toContain(secret);
        for (const line of other.logs) expect(line).not.toContain(secret);
      }
    } finally {
      await other.close();
    }
  });

  it('passes a 413 from Cosmos DB through, and rolls back', async () => {
    const small = await startStack({ emulator: { maxMediaBytes: 1000 } });
    try {
      const data = new FormData();
      data.append('a', new Blob(['fits']), 'fits.txt');
      data.append('b', new Blob([Buffer.alloc(5000)]), 'too-big.bin');
      const response = await fetch(small.route(), { method: 'POST', headers: small.headers(), body: data });
      expect(response.status).toBe(413);
      expect(await json(response)).toMatchObject({ code: 'RequestEntityTooLarge' });
      expect(await small.listAttachments()).toEqual([]);
      expect(await readdir(small.emulator.mediaDir)).toEqual([]);
    } finally {
      await small.close();
    }
  });
});
