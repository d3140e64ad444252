// The README's curl examples, run in the order they are written, against the app in the local
// Functions host: the front door must stay true.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FUNCTION_KEY, startStack, type Stack } from './helpers/stack.js';

const run = promisify(execFile);
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

/** The `sh` blocks of the README from "## Routes" up to the next top-level section. */
async function routeExamples(): Promise<string[]> {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('\n## Routes\n');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end);
  return [...section.matchAll(/^ *```sh\n([\s\S]*?)^ *```$/gm)].map((m) => m[1]!);
}

const MODES = {
  managed: {},
  blob: { MEDIA_STORE: 'blob', BLOB_CONNECTION_STRING: '', BLOB_CONTAINER: 'readme-examples' },
} as const;

describe.each(Object.keys(MODES) as (keyof typeof MODES)[])('the README, media in %s mode', (mode) => {
  let stack: Stack;
  let dir: string;
  beforeAll(async () => {
    const media = mode === 'blob' ? { ...MODES.blob, BLOB_CONNECTION_STRING: inject('storage') } : {};
    stack = await startStack({ env: { WEBHOOK_SECRET: SECRET, ...media } });
    dir = await mkdtemp(join(tmpdir(), 'readme-'));
  });
  afterAll(async () => {
    await stack?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(
    'runs every curl example of its routes, in order, and each does what it says',
    { timeout: 60_000 },
    async () => {
      const blocks = await routeExamples();
      // The block that restarts `npm start` with a webhook secret: this stack has it from the start.
      const runnable = blocks.filter((b) => !/^\S*=\S* npm start/m.test(b));
      expect(runnable.length).toBeGreaterThanOrEqual(8);
      const script = runnable
        .join('\n')
        .replace(/^KEY=.*$/m, `KEY=${FUNCTION_KEY}`)
        .replace(/^ORIGIN=.*$/m, `ORIGIN=${stack.host.url}`);
      expect(script).toContain(`ORIGIN=${stack.host.url}`);
      // Every curl fails the script on a 4xx or 5xx answer.
      const prelude = 'curl() { command curl --fail-with-body "$@"; }\n';
      const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', prelude + script], {
        cwd: dir,
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'latin1',
      });
      expect(stdout).toContain('same bytes');
      expect(stdout).toMatch(/HTTP\/1\.1 304/);
      expect(stdout).toMatch(/HTTP\/1\.1 302/);
      expect(stdout).toMatch(/HTTP\/1\.1 204/);
      expect(stdout).toMatch(/upload-offset: 6/i);
      expect(stdout).toContain('"complete":true');
      expect(await readFile(join(dir, 'downloads', 'scan.pdf'))).toEqual(
        await readFile(join(dir, 'scan.pdf')),
      );

      const ids = (await stack.listAttachments()).map((a) => String(a.id));
      for (const id of ['photo.jpg', 'scan.pdf', 'original', 'cdn-photo', 'raw.jpg', 'hello.txt', 'clip-1'])
        expect(ids).toContain(id);
      expect(ids).not.toContain('thumb.jpg'); // deleted by the last read-side example
      expect(ids.filter((id) => id.endsWith('-image.jpg'))).toHaveLength(1); // idMode=unique
    },
  );
});
