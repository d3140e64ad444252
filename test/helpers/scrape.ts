import { appendFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Every answer and log line the suite produces, and every secret it configures, are written here by the
 * test helpers; `secrets-scan.test.ts` runs after all other files and checks no secret shows up.
 * Test files run in processes forked from one Vitest process, whose pid names the folder.
 */
export const SCRAPE_DIR = join(tmpdir(), `attachment-bridge-scrape-${process.ppid}`);

function append(kind: 'secrets' | 'output', line: string): void {
  mkdirSync(SCRAPE_DIR, { recursive: true });
  appendFileSync(join(SCRAPE_DIR, `${kind}-${process.pid}.jsonl`), `${JSON.stringify(line)}\n`);
}

/** Remembers values that must never appear in an answer or a log line. */
export function recordSecret(...values: (string | undefined)[]): void {
  for (const value of values) if (value) append('secrets', value);
}

/** Remembers something the bridge said: an answer, a log line, a process's output. */
export function recordOutput(text: string): void {
  append('output', text);
}
