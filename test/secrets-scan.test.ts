import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EMULATOR_KEY } from '../src/emulator/server.js';
import { SCRAPE_DIR } from './helpers/scrape.js';

/** Runs after every other test file (vitest.config.ts: its own project, a later group). */
function readAll(kind: 'secrets' | 'output'): string[] {
  let files: string[];
  try {
    files = readdirSync(SCRAPE_DIR).filter((name) => name.startsWith(`${kind}-`));
  } catch {
    return [];
  }
  return files.flatMap((name) =>
    readFileSync(join(SCRAPE_DIR, name), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as string),
  );
}

/** The forms a secret could leak in: as it is, URL-encoded, or the bytes of a base64 key as hex. */
function forms(secret: string): string[] {
  const found = [secret, encodeURIComponent(secret)];
  if (/^[A-Za-z0-9+/=]{24,}$/.test(secret)) found.push(Buffer.from(secret, 'base64').toString('hex'));
  return found;
}

afterAll(() => rmSync(SCRAPE_DIR, { recursive: true, force: true }));

describe('secrets across the whole suite', () => {
  it('appear in no answer and no log line: account keys, webhook secrets, function keys, bearer tokens', () => {
    const secrets = [...new Set(readAll('secrets'))].filter((s) => s.length >= 16);
    const output = readAll('output');
    // The suite ran: it configured secrets and recorded answers and logs.
    expect(secrets).toContain(EMULATOR_KEY);
    expect(secrets.some((s) => s.split('.').length === 3)).toBe(true);
    expect(output.length).toBeGreaterThan(1000);
    const leaks: string[] = [];
    for (const secret of secrets) {
      for (const form of forms(secret)) {
        const line = output.find((text) => text.includes(form));
        if (line) leaks.push(`${secret.slice(0, 6)}… in: ${line.slice(0, 200)}`);
      }
    }
    expect(leaks).toEqual([]);
  });
});
