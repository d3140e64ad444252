import { createHash, randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startStack, type Stack } from './helpers/stack.js';

/** 400 uploads in `npm test`, 4,000 with `npm run soak`; SOAK_UPLOADS overrides both. */
const UPLOADS = Number(
  process.env.SOAK_UPLOADS ?? (process.env.npm_lifecycle_event === 'soak' ? 4_000 : 400),
);
const CONCURRENCY = 32;
const DOCS = Array.from({ length: 8 }, (_, i) => `soak-${i}`);
/** Failures the injected faults may cause; anything else is a bug. */
const EXPECTED_FAILURES = new Set([
  'UpstreamUnavailable',
  'UpstreamUnreachable',
  'UpstreamTimeout',
  'RequestAborted',
]);

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    env: {
      MAX_PART_BYTES: String(1024 * 1024),
      REPLAY_BUFFER_BYTES: String(64 * 1024),
      UPSTREAM_RETRY_BUDGET_MS: '3000',
      UPSTREAM_TIMEOUT_MS: '2000',
    },
    docs: DOCS,
  });
  const creates = { method: 'POST', path: '/attachments' };
  const faults = stack.emulator.faults;
  faults.add({ ...creates, status: 429, retryAfterMs: 5, probability: 0.08 });
  faults.add({ ...creates, status: 449, probability: 0.02 });
  faults.add({ ...creates, status: 503, probability: 0.02 });
  faults.add({ ...creates, delayMs: 30, probability: 0.05 });
  faults.add({ ...creates, dropAfterBytes: 8 * 1024, probability: 0.01 });
  faults.add({ ...creates, dropAfterCommit: true, probability: 0.01 });
  faults.add({ method: 'DELETE', status: 429, retryAfterMs: 5, probability: 0.05 });
});
afterAll(() => stack.close());

/** A small deterministic PRNG (mulberry32), so a failing soak can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Sent {
  name: string;
  sha256: string;
  size: number;
}

interface Outcome {
  doc: string;
  status: number;
  code?: string;
  message?: string;
  files: Sent[];
  answer?: { attachments: { id: string; size: number; sha256: string; media: string }[] };
}

async function upload(index: number, next: () => number): Promise<Outcome> {
  const doc = DOCS[index % DOCS.length]!;
  const boundary = `soak${randomUUID()}`;
  const fileCount = 1 + Math.floor(next() * 3);
  const files: { sent: Sent; bytes: Buffer }[] = [];
  for (let i = 0; i < fileCount; i++) {
    // Mostly small (replayable), some larger than the replay buffer (streamed once).
    const size = next() < 0.8 ? Math.floor(next() * 60_000) : 64 * 1024 + Math.floor(next() * 300_000);
    const bytes = Buffer.alloc(size);
    for (let j = 0; j + 4 <= size; j += 4096) bytes.writeUInt32BE((index * 7919 + i * 104729 + j) >>> 0, j);
    const name = `u${index}-${i}-${randomUUID()}.bin`;
    files.push({ sent: { name, size, sha256: createHash('sha256').update(bytes).digest('hex') }, bytes });
  }
  const abortMidway = next() < 0.03;
  const controller = new AbortController();
  async function* body() {
    for (const [i, { sent, bytes }] of files.entries()) {
      yield Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="${sent.name}"\r\n` +
          'Content-Type: application/octet-stream\r\n\r\n',
      );
      yield bytes.subarray(0, bytes.length >> 1);
      if (abortMidway && i === files.length - 1) {
        // Give the bridge this much, then vanish like a phone losing its signal.
        await new Promise((resolve) => setImmediate(resolve));
        controller.abort();
      }
      yield bytes.subarray(bytes.length >> 1);
      yield Buffer.from('\r\n');
    }
    yield Buffer.from(`--${boundary}--\r\n`);
  }
  const sent = files.map((f) => f.sent);
  try {
    const response = await request(stack.route(doc), {
      method: 'POST',
      headers: { ...stack.headers(doc), 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: Readable.from(body()),
      signal: controller.signal,
    });
    const text = await response.body.text();
    if (response.statusCode === 201) {
      return { doc, status: 201, files: sent, answer: JSON.parse(text) as Outcome['answer'] };
    }
    const error = JSON.parse(text) as { code: string; message: string };
    return { doc, status: response.statusCode, code: error.code, message: error.message, files: sent };
  } catch (err) {
    if (!controller.signal.aborted) throw err;
    return { doc, status: 0, code: 'RequestAborted', files: sent };
  }
}

describe(`soak: ${UPLOADS} uploads at concurrency ${CONCURRENCY} with faults injected`, () => {
  it('stores every acknowledged file byte for byte, once, and nothing else', async () => {
    const next = random(20261125);
    const outcomes: Outcome[] = [];
    let started = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (started < UPLOADS) outcomes.push(await upload(started++, next));
      }),
    );
    // Every request the bridge took in has finished (aborted ones too): one log line each.
    await vi.waitFor(
      () => expect(stack.logs.filter((l) => l.includes('"message":"request"')).length).toBe(UPLOADS),
      {
        timeout: 30_000,
      },
    );

    const tally = outcomes.reduce<Record<string, number>>((counts, o) => {
      const key = o.status === 201 ? '201' : `${o.status} ${o.code}`;
      counts[key] = (counts[key] ?? 0) + 1;
      return counts;
    }, {});
    console.info(`soak outcomes: ${JSON.stringify(tally)}`);
    const unexpected = outcomes.filter((o) => o.status !== 201 && !EXPECTED_FAILURES.has(o.code ?? ''));
    expect(unexpected).toEqual([]);
    const acknowledged = outcomes.filter((o) => o.status === 201);
    expect(acknowledged.length).toBeGreaterThan(UPLOADS * 0.6);

    // Each 201 reports exactly what the client sent.
    const expected = new Map<string, { doc: string; sha256: string; size: number; media: string }>();
    for (const outcome of acknowledged) {
      expect(outcome.answer!.attachments.map((a) => a.id)).toEqual(outcome.files.map((f) => f.name));
      for (const [i, attachment] of outcome.answer!.attachments.entries()) {
        expect(attachment).toMatchObject({ size: outcome.files[i]!.size, sha256: outcome.files[i]!.sha256 });
        expected.set(attachment.id, {
          doc: outcome.doc,
          sha256: attachment.sha256,
          size: attachment.size,
          media: attachment.media,
        });
      }
    }

    // What Cosmos DB holds is exactly the acknowledged files: no orphans, no duplicates, same bytes.
    const stored = new Map<string, Record<string, unknown>>();
    for (const doc of DOCS) {
      for (const attachment of await stack.listAttachments(doc)) {
        expect(stored.has(String(attachment.id))).toBe(false);
        stored.set(String(attachment.id), attachment);
      }
    }
    expect([...stored.keys()].sort()).toEqual([...expected.keys()].sort());
    const storedHashes = new Map(stack.emulator.store.allMedia().map((m) => [m.sha256, m.size]));
    for (const [id, want] of expected) {
      expect(stored.get(id)!.media).toBe(want.media);
      expect(storedHashes.get(want.sha256), id).toBe(want.size);
    }
    expect((await readdir(stack.emulator.mediaDir)).length).toBe(expected.size);
    expect(stack.emulator.store.allMedia().length).toBe(expected.size);
  });
});
