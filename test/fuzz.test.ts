import { readdir } from 'node:fs/promises';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUZZ_LIMITS, hostileMultipart } from './helpers/hostile-multipart.js';
import { startStack, type Stack } from './helpers/stack.js';

/** 1,000 cases in `npm test`, 20,000 with `npm run fuzz`; FUZZ_RUNS overrides both. */
const RUNS = Number(process.env.FUZZ_RUNS ?? (process.env.npm_lifecycle_event === 'fuzz' ? 20_000 : 1_000));
const DOC = 'fuzz';
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    env: {
      MAX_PART_BYTES: String(FUZZ_LIMITS.maxPartBytes),
      MAX_PARTS: String(FUZZ_LIMITS.maxParts),
      MAX_FIELD_BYTES: String(FUZZ_LIMITS.maxFieldBytes),
      // Half the parts are buffered for replay, half stream: both paths meet the hostile input.
      REPLAY_BUFFER_BYTES: '700',
    },
    docs: [DOC],
  });
});
afterAll(() => stack.close());

function storedNow(): number {
  return stack.emulator.store.listAttachments({
    db: 'demo',
    coll: 'items',
    doc: DOC,
    partitionKey: `["${DOC}"]`,
  }).attachments.length;
}

describe('hostile multipart bodies', () => {
  it(`are always refused with a 4xx JSON error, never a 5xx, and leave nothing stored (${RUNS} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(hostileMultipart, async ({ contentType, body, flaw }) => {
        const response = await fetch(stack.route(DOC), {
          method: 'POST',
          headers: { ...stack.headers(DOC), 'content-type': contentType },
          body,
        });
        const text = await response.text();
        expect(response.status, `${flaw}: ${text}`).toBeGreaterThanOrEqual(400);
        expect(response.status, `${flaw}: ${text}`).toBeLessThan(500);
        const error = JSON.parse(text) as Record<string, unknown>;
        expect(Object.keys(error).sort()).toEqual(['code', 'message']);
        expect(typeof error.code).toBe('string');
        expect(typeof error.message).toBe('string');
        expect(storedNow(), flaw).toBe(0);
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    expect(await readdir(stack.emulator.mediaDir)).toEqual([]);
    // And the bridge still serves a good request afterwards.
    const good = new FormData();
    good.append('f', new Blob(['fine']), 'after-fuzz.txt');
    expect(
      (await fetch(stack.route(DOC), { method: 'POST', headers: stack.headers(DOC), body: good })).status,
    ).toBe(201);
  });
});

describe('hostile headers and ids', () => {
  const header = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 300 }),
    fc.constantFrom('..', '.', '%2e%2e', '%00', '%ZZ', 'a%2Fb', '["x"]', '[1,2]', '[{}]', '{"a":1}', ' '),
  );
  // Header values cannot hold CR, LF or NUL on the wire; everything else goes.
  const wire = (value: string) => value.replace(/[\r\n\0]/g, ' ').replace(/[^\x20-\xff]/g, '?');

  it('never answer 5xx; every refusal is JSON and stores nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          slug: header,
          partitionKey: header,
          session: header,
          contentType: fc.oneof(
            header,
            fc.constantFrom('application/json', 'image/png', 'multipart/form-data'),
          ),
          segment: fc.oneof(header, fc.constantFrom('..', '%2e%2e', 'a%252Fb', '%E0%A4%A')),
          body: fc.uint8Array({ maxLength: 200 }),
        }),
        async ({ slug, partitionKey, session, contentType, segment, body }) => {
          const before = storedNow();
          const path = `${stack.host.url}/api/dbs/demo/colls/items/docs/${encodeURIComponent(segment).replace(/%25/g, '%')}/attachments`;
          let response: Response;
          try {
            response = await fetch(path, {
              method: 'POST',
              headers: {
                'x-functions-key': stack.headers()['x-functions-key']!,
                slug: wire(slug),
                'x-ms-documentdb-partitionkey': wire(partitionKey),
                'x-ms-session-token': wire(session),
                'content-type': wire(contentType),
              },
              body: Buffer.from(body),
            });
          } catch {
            return; // a URL or header the client itself refuses to send
          }
          const text = await response.text();
          expect(response.status, text).toBeLessThan(500);
          if (response.status >= 400) {
            expect(Object.keys(JSON.parse(text) as object).sort()).toEqual(['code', 'message']);
            expect(storedNow()).toBe(before);
          }
        },
      ),
      { numRuns: Math.ceil(RUNS / 2), endOnFailure: true },
    );
  });
});
