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
/** Attempts a client makes at one upload, as mobile SDKs retry: after every 5xx and every broken connection. */
const ATTEMPTS = 6;
const DOCS = Array.from({ length: 8 }, (_, i) => `soak-${i}`);
/** Final failures the injected faults may cause; anything else is a bug. */
const EXPECTED_FAILURES = new Set([
  'UpstreamUnavailable',
  'UpstreamUnreachable',
  'UpstreamTimeout',
  'RequestAborted',
  'Conflict',
]);

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    env: {
      MAX_PART_BYTES: String(1024 * 1024),
      REPLAY_BUFFER_BYTES: String(64 * 1024),
      UPSTREAM_RETRY_BUDGET_MS: '3000',
      UPSTREAM_TIMEOUT_MS: '1000',
    },
    docs: DOCS,
  });
  const creates = { method: 'POST', path: '/attachments' };
  const faults = stack.emulator.faults;
  faults.add({ ...creates, status: 429, retryAfterMs: 5, probability: 0.08 });
  faults.add({ ...creates, status: 449, probability: 0.02 });
  faults.add({ ...creates, status: 503, probability: 0.02 });
  faults.add({ ...creates, delayMs: 30, probability: 0.05 });
  // Outcomes the bridge cannot know: cut off after some bytes, stored but unanswered, stored but 5xx.
  faults.add({ ...creates, dropAfterBytes: 1, probability: 0.02 });
  faults.add({ ...creates, dropAfterBytes: 8 * 1024, probability: 0.01 });
  faults.add({ ...creates, dropAfterCommit: true, probability: 0.02 });
  faults.add({ ...creates, statusAfterCommit: 503, probability: 0.01 });
  faults.add({ ...creates, statusAfterCommit: 408, probability: 0.01 });
  // The marks that make managed media provably a request's own, and rollbacks, fail too.
  faults.add({ method: 'PUT', status: 503, probability: 0.03 });
  faults.add({ method: 'PUT', dropAfterCommit: true, probability: 0.01 });
  faults.add({ method: 'DELETE', status: 429, retryAfterMs: 5, probability: 0.05 });
  faults.add({ method: 'DELETE', status: 500, probability: 0.03 });
  faults.add({ method: 'DELETE', dropAfterCommit: true, probability: 0.02 });
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

interface File {
  name: string;
  sha256: string;
  size: number;
  bytes: Buffer;
}

interface Upload {
  doc: string;
  /** Files, or one metadata attachment (JSON) when `metadata` is set. */
  files: File[];
  metadata?: { id: string; media: string };
}

interface Outcome {
  upload: Upload;
  status: number;
  code?: string;
  attempts: number;
  answer?: { attachments: { id: string; size?: number; sha256?: string; media: string }[] };
}

function plan(index: number, next: () => number): Upload {
  const doc = DOCS[index % DOCS.length]!;
  if (next() < 0.2) {
    const id = `m${index}-${randomUUID()}`;
    return { doc, files: [], metadata: { id, media: `https://cdn.example/${id}.jpg` } };
  }
  const files: File[] = [];
  const count = 1 + Math.floor(next() * 3);
  for (let i = 0; i < count; i++) {
    // Mostly small (sent whole, replayable), some larger than the replay buffer (streamed once).
    const size = next() < 0.8 ? Math.floor(next() * 60_000) : 64 * 1024 + Math.floor(next() * 300_000);
    const bytes = Buffer.alloc(size);
    for (let j = 0; j + 4 <= size; j += 4096) bytes.writeUInt32BE((index * 7919 + i * 104729 + j) >>> 0, j);
    files.push({
      name: `u${index}-${i}-${randomUUID()}.bin`,
      size,
      bytes,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
  }
  return { doc, files };
}

/** One attempt: 0 when the connection broke (or the client gave up midway, like a phone losing signal). */
async function attempt(upload: Upload, abortMidway: boolean): Promise<{ status: number; text: string }> {
  const controller = new AbortController();
  const headers = stack.headers(upload.doc);
  let body: Readable | string;
  if (upload.metadata) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify({
      id: upload.metadata.id,
      contentType: 'image/jpeg',
      media: upload.metadata.media,
    });
  } else {
    const boundary = `soak${randomUUID()}`;
    headers['content-type'] = `multipart/form-data; boundary=${boundary}`;
    body = Readable.from(
      (async function* () {
        for (const [i, file] of upload.files.entries()) {
          yield Buffer.from(
            `--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="${file.name}"\r\n` +
              'Content-Type: application/octet-stream\r\n\r\n',
          );
          yield file.bytes.subarray(0, file.bytes.length >> 1);
          if (abortMidway && i === upload.files.length - 1) {
            await new Promise((resolve) => setImmediate(resolve));
            controller.abort();
          }
          yield file.bytes.subarray(file.bytes.length >> 1);
          yield Buffer.from('\r\n');
        }
        yield Buffer.from(`--${boundary}--\r\n`);
      })(),
    );
  }
  try {
    const response = await request(stack.route(upload.doc), {
      method: 'POST',
      headers,
      body,
      signal: controller.signal,
    });
    return { status: response.statusCode, text: await response.body.text() };
  } catch (err) {
    if (controller.signal.aborted) return { status: 0, text: '' };
    throw err;
  }
}

/** An upload as a mobile client sends it: again, with the same ids, after every 5xx or broken connection. */
async function send(upload: Upload, next: () => number): Promise<Outcome> {
  for (let attempts = 1; ; attempts++) {
    const { status, text } = await attempt(upload, next() < 0.03);
    const retry = status === 0 || status >= 500;
    if (!retry || attempts === ATTEMPTS) {
      if (status === 201) {
        // The JSON route answers with the resource itself, a form with the list of what it created.
        const parsed = JSON.parse(text) as Record<string, unknown>;
        const answer = (upload.metadata ? { attachments: [parsed] } : parsed) as Outcome['answer'];
        return { upload, status, attempts, answer };
      }
      const code = status === 0 ? 'RequestAborted' : (JSON.parse(text) as { code: string }).code;
      return { upload, status, code, attempts };
    }
  }
}

describe(`soak: ${UPLOADS} uploads at concurrency ${CONCURRENCY}, retried like mobile clients, with faults injected`, () => {
  it(
    'keeps every attachment it answered 201 for, byte for byte, once, and nothing else, after all clean-up',
    { timeout: 300_000 },
    async () => {
      const next = random(20261127);
      const outcomes: Outcome[] = [];
      let started = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (started < UPLOADS) {
            const index = started++;
            outcomes.push(await send(plan(index, next), next));
          }
        }),
      );
      const attempts = outcomes.reduce((sum, o) => sum + o.attempts, 0);
      // Every request the bridge took in has finished (aborted ones too): the host logs each invocation
      // when it ends (the app logs a line only for refusals and failures).
      await vi.waitFor(
        () =>
          expect(
            stack.hostLogs.filter((r) => r.message.startsWith("Executed 'Functions.createAttachments'"))
              .length,
          ).toBe(attempts),
        { timeout: 30_000 },
      );
      // Then every clean-up task (looks after unknown outcomes, rollbacks that failed) has been done.
      const poisoned = await stack.cleanupDrained();

      const tally = outcomes.reduce<Record<string, number>>((counts, o) => {
        const key = o.status === 201 ? '201' : `${o.status} ${o.code}`;
        counts[key] = (counts[key] ?? 0) + 1;
        return counts;
      }, {});
      const unexpected = outcomes.filter((o) => o.status !== 201 && !EXPECTED_FAILURES.has(o.code ?? ''));
      expect(unexpected).toEqual([]);
      const acknowledged = outcomes.filter((o) => o.status === 201);
      expect(acknowledged.length).toBeGreaterThan(UPLOADS * 0.9);

      // Each 201 reports exactly what the client sent.
      const expected = new Map<string, { doc: string; media: string; sha256?: string; size?: number }>();
      for (const { upload, answer } of acknowledged) {
        const ids = upload.metadata ? [upload.metadata.id] : upload.files.map((f) => f.name);
        expect(answer!.attachments.map((a) => a.id)).toEqual(ids);
        for (const [i, attachment] of answer!.attachments.entries()) {
          const file = upload.files[i];
          if (file) expect(attachment).toMatchObject({ size: file.size, sha256: file.sha256 });
          expected.set(attachment.id, {
            doc: upload.doc,
            media: attachment.media,
            sha256: file?.sha256,
            size: file?.size,
          });
        }
      }

      // What Cosmos DB holds is exactly the acknowledged attachments: none lost, no orphans, no duplicates.
      const stored = new Map<string, Record<string, unknown>>();
      let duplicates = 0;
      for (const doc of DOCS) {
        for (const attachment of await stack.listAttachments(doc)) {
          if (stored.has(String(attachment.id))) duplicates += 1;
          stored.set(String(attachment.id), attachment);
        }
      }
      const lost = [...expected.keys()].filter((id) => !stored.has(id));
      const orphans = [...stored.keys()].filter((id) => !expected.has(id));
      console.info(
        `soak: ${UPLOADS} uploads in ${attempts} attempts: ${JSON.stringify(tally)}; ` +
          `after clean-up: ${lost.length} lost, ${orphans.length} orphans, ${duplicates} duplicates, ${poisoned} poisoned`,
      );
      expect({ lost, orphans, duplicates, poisoned }).toEqual({
        lost: [],
        orphans: [],
        duplicates: 0,
        poisoned: 0,
      });
      const storedHashes = new Map(stack.emulator.store.allMedia().map((m) => [m.sha256, m.size]));
      const files = [...expected.entries()].filter(([, want]) => want.sha256 !== undefined);
      for (const [id, want] of expected) {
        expect(stored.get(id)!.media).toBe(want.media);
        if (want.sha256) expect(storedHashes.get(want.sha256), id).toBe(want.size);
      }
      expect((await readdir(stack.emulator.mediaDir)).length).toBe(files.length);
      expect(stack.emulator.store.allMedia().length).toBe(files.length);
    },
  );
});
