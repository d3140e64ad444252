import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOC, FUNCTION_KEY, sha256, startStack, type Stack } from './helpers/stack.js';

/**
 * The client examples in examples/, run as a user would run them against `npm start`, here against
 * the test stack (the app in the local Functions host, the emulator, Azurite). Their answers are
 * checked against the OpenAPI description with the rest of the suite's.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

let stack: Stack;
let work: string;
beforeAll(async () => {
  stack = await startStack();
  work = await mkdtemp(join(tmpdir(), 'bridge-examples-'));
});
afterAll(async () => {
  await stack?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

/** The examples' settings: where the bridge is and the key, as a user would export them. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    BRIDGE_URL: `${stack.host.url}/api`,
    FUNCTION_KEY,
    DOC,
    ...extra,
  };
}

describe('client examples', () => {
  it('examples/curl.sh uploads, lists, downloads the same bytes and deletes, against the running bridge', async () => {
    // Asynchronous: the emulator answers from this very process.
    const { stdout } = await run('bash', [join(ROOT, 'examples', 'curl.sh')], { env: env(), cwd: work });
    const name = /^1\. upload (\S+)/m.exec(stdout)?.[1];
    expect(name).toMatch(/^hello-\d+-\d+\.txt$/);
    expect(stdout).toContain(`"id":"${name}"`);
    expect(stdout).toMatch(/"sha256":"[0-9a-f]{64}"/);
    expect(stdout).toContain('same bytes');
    expect(stdout.trimEnd().split('\n').at(-1)).toBe('204');
    const ids = (await stack.listAttachments()).map((a) => a.id);
    expect(ids).not.toContain(name);
    // What the bridge saw: each step of the flow, by its route.
    const requests = stack.answered.filter((answer) => answer.path.includes(name!));
    expect(requests.map((r) => `${r.method} ${r.status}`)).toEqual(['GET 200', 'DELETE 204']);
  });

  it('examples/tus-node.mjs uploads a file in chunks with tus-js-client and prints the attachment', async () => {
    const file = join(work, 'clip.bin');
    const bytes = randomBytes(1024 * 1024 + 123);
    await writeFile(file, bytes);
    const { stdout } = await run(
      process.execPath,
      [join(ROOT, 'examples', 'tus-node.mjs'), file, 'video/mp4'],
      // Small chunks, so that the upload takes several PATCHes.
      { env: env({ CHUNK_BYTES: String(256 * 1024), TUS_URL_STORAGE: join(work, 'tus.json') }), cwd: work },
    );
    const attachment = JSON.parse(stdout) as Record<string, unknown>;
    expect(attachment).toMatchObject({
      contentType: 'video/mp4',
      size: bytes.length,
      sha256: sha256(bytes),
      originalName: 'clip.bin',
    });
    expect(attachment.id).toMatch(/-clip\.bin$/);
    const stored = (await stack.listAttachments()).find((a) => a.id === attachment.id);
    expect(await stack.readMedia(String(stored!.media))).toEqual(bytes);
    const patches = stack.answered.filter((answer) => answer.method === 'PATCH' && answer.status === 204);
    expect(patches).toHaveLength(5);
  });
});
