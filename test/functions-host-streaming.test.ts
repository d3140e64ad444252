// Bodies through the local Functions host: a large upload streamed into the worker with flat memory,
// the request body limit, a caller that goes away, a handler that throws (the proxied request hangs
// until the activity timeout, as in Azure) and a worker killed mid-invocation.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureHost, type TestHost } from './helpers/functions-host.js';

const MiB = 1024 * 1024;
const ACTIVITY_TIMEOUT_MS = 1500;

let host: TestHost;
let limited: TestHost;

beforeAll(async () => {
  [host, limited] = await Promise.all([
    startFixtureHost('http-app', { activityTimeoutMs: ACTIVITY_TIMEOUT_MS }),
    startFixtureHost('http-app', { env: { FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '1000' } }),
  ]);
});
afterAll(async () => {
  await Promise.all([host?.close(), limited?.close()]);
});

/** Resident memory of a process, in bytes. */
function rss(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
  } catch {
    return (
      Number(
        execFileSync('ps', ['-o', 'rss=', '-p', String(pid)])
          .toString()
          .trim(),
      ) * 1024
    );
  }
}

interface Sent {
  response: Promise<{ status: number; headers: IncomingMessage['headers']; body: string }>;
  write: (chunk: Buffer) => Promise<void>;
  end: () => void;
  destroy: () => void;
}

/** A request whose body the test writes chunk by chunk, with backpressure. */
function upload(url: string, headers: Record<string, string | number>): Sent {
  const req = httpRequest(url, { method: 'POST', headers, agent: false });
  const response = new Promise<{ status: number; headers: IncomingMessage['headers']; body: string }>(
    (resolve, reject) => {
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
    },
  );
  return {
    response,
    // A failed request rejects `response`; a write waits for drain only.
    write: (chunk) =>
      new Promise((resolve) => {
        if (req.write(chunk)) resolve();
        else req.once('drain', resolve);
      }),
    end: () => req.end(),
    destroy: () => req.destroy(),
  };
}

describe('a large upload', () => {
  it('streams 50 MiB into the handler, which hashes it, with the memory of host and worker flat', async () => {
    const chunk = Buffer.alloc(256 * 1024);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) % 251;
    // A first large body grows both heaps to their working size (about 30 MiB, whatever the size
    // of the body); measure from there.
    const warm = upload(`${host.url}/api/hash`, { 'transfer-encoding': 'chunked' });
    for (let written = 0; written < 32 * MiB; written += chunk.length) await warm.write(chunk);
    warm.end();
    expect((await warm.response).status).toBe(200);

    const total = 50 * MiB;
    const expected = createHash('sha256');
    const workerPid = host.worker.pid;
    const baseline = { host: rss(process.pid), worker: rss(workerPid) };
    const peak = { ...baseline };
    const sample = setInterval(() => {
      peak.host = Math.max(peak.host, rss(process.pid));
      peak.worker = Math.max(peak.worker, rss(workerPid));
    }, 20);
    try {
      const sent = upload(`${host.url}/api/hash`, {
        'content-type': 'application/octet-stream',
        'transfer-encoding': 'chunked',
      });
      for (let written = 0; written < total; written += chunk.length) {
        expected.update(chunk);
        await sent.write(chunk);
      }
      sent.end();
      const answer = await sent.response;
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toEqual({ size: total, sha256: expected.digest('hex') });
    } finally {
      clearInterval(sample);
    }
    // Holding the body would take 50 MiB or more in either process; streaming takes a few.
    expect(peak.host - baseline.host).toBeLessThan(24 * MiB);
    expect(peak.worker - baseline.worker).toBeLessThan(24 * MiB);
  });
});

describe('FUNCTIONS_REQUEST_BODY_SIZE_LIMIT', () => {
  it('answers 500 and aborts the body the handler reads when Content-Length is over the limit', async () => {
    const mark = limited.mark();
    const sent = upload(`${limited.url}/api/hash`, { 'content-length': 2000 });
    await sent.write(Buffer.alloc(2000, 1));
    sent.end();
    const answer = await sent.response;
    expect(answer.status).toBe(500);
    expect(answer.body).toBe('');
    expect(answer.headers.connection).toBe('close');
    const failed = await limited.waitForLog((r) => r.message.startsWith('body failed after'), mark);
    expect(failed.message).toMatch(/^body failed after 0 bytes/);
    expect(failed.category).toBe('Function.hash.User');
    const executed = await limited.waitForLog(
      (r) =>
        r.invocationId === failed.invocationId && r.message.startsWith("Executed 'Functions.hash' (Failed"),
      mark,
    );
    expect(executed.error).toMatch(/ForwarderError: RequestBodyClient.*max request body size is 1000 bytes/);
  });

  it('counts the bytes of a chunked body and hands the handler no byte past the limit', async () => {
    const mark = limited.mark();
    const sent = upload(`${limited.url}/api/hash`, { 'transfer-encoding': 'chunked' });
    for (let i = 0; i < 4; i++) await sent.write(Buffer.alloc(600, 2));
    sent.end();
    expect((await sent.response).status).toBe(500);
    const failed = await limited.waitForLog((r) => r.message.startsWith('body failed after'), mark);
    expect(Number(/after (\d+) bytes/.exec(failed.message)![1])).toBeLessThanOrEqual(1000);
  });

  it('lets a body of exactly the limit through', async () => {
    const sent = upload(`${limited.url}/api/hash`, { 'content-length': 1000 });
    await sent.write(Buffer.alloc(1000, 3));
    sent.end();
    const answer = await sent.response;
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ size: 1000 });
  });
});

describe('a caller that goes away mid-body', () => {
  it('reaches the handler as a failing body stream', async () => {
    const mark = host.mark();
    const sent = upload(`${host.url}/api/hash`, { 'content-length': 10 * MiB });
    sent.response.catch(() => undefined);
    for (let i = 0; i < 4; i++) await sent.write(Buffer.alloc(256 * 1024, 4));
    const executing = await host.waitForLog((r) => r.message.startsWith("Executing 'Functions.hash'"), mark);
    sent.destroy();
    const failed = await host.waitForLog(
      (r) => r.invocationId === executing.invocationId && r.message.startsWith('body failed after'),
      mark,
    );
    expect(Number(/after (\d+) bytes/.exec(failed.message)![1])).toBeLessThan(10 * MiB);
    const executed = await host.waitForLog(
      (r) => r.invocationId === executing.invocationId && r.message.startsWith("Executed 'Functions.hash'"),
      mark,
    );
    expect(executed.error).toMatch(/ForwarderError: RequestBodyCanceled/);
  });
});

describe('response bodies through the patched library (patches/@azure+functions)', () => {
  it('a body that fails mid-way ends the response as broken at once, not after the activity timeout', async () => {
    const started = Date.now();
    const response = await fetch(`${host.url}/api/stream-fails`);
    expect(response.status).toBe(200);
    await expect(response.arrayBuffer()).rejects.toThrow();
    // Well within the (short) activity timeout this file's host runs with.
    expect(Date.now() - started).toBeLessThan(ACTIVITY_TIMEOUT_MS);
  });

  it('writes a body no faster than the caller reads it, and stops making it when the caller leaves', async () => {
    const mark = host.mark();
    const response = await fetch(`${host.url}/api/stream-large`);
    const reader = response.body!.getReader();
    await reader.read(); // then read nothing more: the body is 256 MiB
    // Give a writer that ignores backpressure the time to push it all.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await reader.cancel();
    const cancelled = await host.waitForLog((r) => r.message.startsWith('cancelled after'), mark);
    const produced = Number(/after (\d+) bytes/.exec(cancelled.message)![1]);
    // What sockets and buffers on the way hold (a few MiB), not the 256 MiB.
    expect(produced).toBeLessThan(32 * 1024 * 1024);
  });
});

describe('a handler that throws', () => {
  it('leaves the caller waiting until the activity timeout, then 500, as the real host does', async () => {
    const mark = host.mark();
    const started = Date.now();
    const answer = await fetch(`${host.url}/api/throws`);
    expect(answer.status).toBe(500);
    expect(await answer.text()).toBe('');
    expect(Date.now() - started).toBeGreaterThanOrEqual(ACTIVITY_TIMEOUT_MS - 50);
    const executed = await host.waitForLog(
      (r) => r.message.startsWith("Executed 'Functions.throws' (Failed"),
      mark,
    );
    expect(executed.error).toMatch(/ForwarderError: RequestTimedOut/);
    // The function's own error happened long before: the postInvocation hook saw it.
    expect(
      host.invocationLogs(executed.invocationId!).some((r) => r.message === 'postInvocation saw an error'),
    ).toBe(true);
  });
});

describe('a worker killed mid-invocation', () => {
  it('answers 500 when nothing was sent yet, and a new worker serves the next request', async () => {
    const pid = host.worker.pid;
    const mark = host.mark();
    const answer = fetch(`${host.url}/api/stall`);
    await host.waitForLog((r) => r.message === `stalling in ${pid}`, mark);
    host.worker.kill();
    const response = await answer;
    expect(response.status).toBe(500);
    await host.waitForLog((r) => r.message.startsWith(`Language Worker Process exited. Pid=${pid}`));
    await host.worker.ready();
    expect(host.worker.pid).not.toBe(pid);
    const next = await fetch(`${host.url}/api/echo/after`);
    expect(((await next.json()) as { params: unknown }).params).toEqual({ id: 'after' });
  });

  it('cuts the answer off when it had started', async () => {
    await host.worker.ready();
    const pid = host.worker.pid;
    const response = await fetch(`${host.url}/api/stream-stall`);
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const first = (await reader.read()).value as Uint8Array;
    expect(new TextDecoder().decode(first)).toBe('started');
    await host.waitForLog((r) => r.message === `streaming from ${pid}`);
    host.worker.kill();
    await expect(reader.read()).rejects.toThrow();
    await host.worker.ready();
  });
});
