import { request as httpRequest, type ClientRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './helpers/stack.js';

/** Issue "Never delete what was confirmed", findings 4 and 8: slow uploads never starve others; leaving is not an error. */
let stack: Stack;

beforeAll(async () => {
  // Kestrel's minimum rate (240 bytes/s), after a grace period shortened for the test.
  stack = await startStack({ env: { MIN_UPLOAD_RATE_GRACE_MS: '1500' }, docs: ['s-small', 's-slow'] });
});
afterAll(() => stack.close());

interface Trickle {
  request: ClientRequest;
  answer: Promise<{ status: number; body: string }>;
  stop(): void;
}

/** A caller on a dreadful network: a form's first part, then one byte every 200 ms. */
function trickle(doc: string, name: string): Trickle {
  const boundary = 'trickle';
  const request = httpRequest(stack.route(doc), {
    method: 'POST',
    headers: { ...stack.headers(doc), 'content-type': `multipart/form-data; boundary=${boundary}` },
  });
  request.on('error', () => {});
  const answer = new Promise<{ status: number; body: string }>((resolve) => {
    request.once('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.once('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
  });
  request.write(`--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="${name}"\r\n\r\nx`);
  const timer = setInterval(() => request.write('x'), 200); // the caller's pace, not synchronisation
  return { request, answer, stop: () => clearInterval(timer) };
}

describe('slow uploads', () => {
  it('never hold up another caller’s small upload, and are cut off with 408 once too slow (finding 4)', async () => {
    // As many crawling uploads as there are upload connections to Cosmos DB (UPSTREAM_CONNECTIONS, 64).
    const crawlers = Array.from({ length: 64 }, (_, i) => trickle('s-slow', `crawl-${i}.bin`));
    try {
      await Promise.all(crawlers.map((c) => new Promise((resolve) => c.request.write('', resolve))));
      const firstCrawlerAnswer = Promise.race(crawlers.map((c) => c.answer)).then(
        () => 'a crawler was answered first',
      );
      const form = new FormData();
      form.append('f', new Blob(['hello']), 'small.txt');
      const small = fetch(stack.route('s-small'), {
        method: 'POST',
        headers: stack.headers('s-small'),
        body: form,
      }).then((r) => r.status);
      // The small upload is done while every crawler is still crawling.
      expect(await Promise.race([small, firstCrawlerAnswer])).toBe(201);
      const answers = await Promise.all(crawlers.map((c) => c.answer));
      expect(new Set(answers.map((a) => a.status))).toEqual(new Set([408]));
      expect(JSON.parse(answers[0]!.body)).toMatchObject({ code: 'RequestTimeout' });
      // Nothing of theirs ever reached Cosmos DB: none sent the 64 KiB an upload needs to take a connection.
      expect(stack.requests.filter((r) => r.path.includes('/docs/s-slow/')).length).toBe(0);
    } finally {
      for (const crawler of crawlers) {
        crawler.stop();
        crawler.request.destroy();
      }
    }
  });

  it('logs a caller leaving mid-upload at info, not as a failure (finding 8)', async () => {
    const before = stack.logs.length;
    const leaving = trickle('s-slow', 'leaving.bin');
    await new Promise((resolve) => leaving.request.write('y'.repeat(100_000), resolve));
    leaving.stop();
    leaving.request.destroy();
    const line = await stack.logLine((l) => l.message === 'request' && l.code === 'RequestAborted');
    expect(line.level).toBe('info');
    const errors = stack.logs
      .slice(before)
      .filter((l) => (JSON.parse(l) as { level: string }).level !== 'info');
    expect(errors).toEqual([]);
  });
});
