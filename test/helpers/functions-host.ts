// Starting the local Functions host on a fixture app (plain ESM apps under test/fixtures/functions-apps)
// for tests, with its log lines and keys recorded for the suite's secrets scan.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostLogRecord } from '../../src/functions-host/host-logs.js';
import {
  startFunctionsHost,
  type FunctionsHost,
  type FunctionsHostOptions,
} from '../../src/functions-host/host.js';
import { recordOutput, recordSecret } from './scrape.js';

export const FIXTURE_APPS = fileURLToPath(new URL('../fixtures/functions-apps/', import.meta.url));

export interface TestHost extends FunctionsHost {
  /** How many records were logged so far: a mark for `waitForLog`. */
  mark(): number;
  /**
   * The first record logged after `since` (a mark; default: from the start) that matches, already
   * written or coming, within the deadline.
   */
  waitForLog(
    match: (record: HostLogRecord) => boolean,
    since?: number,
    timeoutMs?: number,
  ): Promise<HostLogRecord>;
  /** All records of one invocation. */
  invocationLogs(invocationId: string): HostLogRecord[];
}

export async function startFixtureHost(
  app: string,
  options: Partial<FunctionsHostOptions> = {},
): Promise<TestHost> {
  const events = new EventEmitter();
  events.setMaxListeners(100);
  const all: HostLogRecord[] = [];
  const host = await startFunctionsHost({
    appDir: app.startsWith('/') ? app : join(FIXTURE_APPS, app),
    port: 0,
    log: false,
    ...options,
    env: { PATH: process.env.PATH, ...options.env },
    onLog: (record) => {
      all.push(record);
      recordOutput(JSON.stringify(record));
      events.emit('log', record);
      options.onLog?.(record);
    },
  });
  recordSecret(host.functionKey, host.masterKey);
  return Object.assign(host, {
    mark: () => all.length,
    waitForLog(
      match: (record: HostLogRecord) => boolean,
      since = 0,
      timeoutMs = 20_000,
    ): Promise<HostLogRecord> {
      const found = all.slice(since).find(match);
      if (found) return Promise.resolve(found);
      return new Promise<HostLogRecord>((resolve, reject) => {
        const timer = setTimeout(() => {
          events.off('log', onLog);
          reject(new Error(`No matching log within ${timeoutMs} ms`));
        }, timeoutMs);
        const onLog = (record: HostLogRecord) => {
          if (!match(record)) return;
          clearTimeout(timer);
          events.off('log', onLog);
          resolve(record);
        };
        events.on('log', onLog);
      });
    },
    invocationLogs(invocationId: string): HostLogRecord[] {
      return all.filter((record) => record.invocationId === invocationId);
    },
  });
}

/**
 * A copy of a fixture app with extra files (local.settings.json, say), inside the fixtures folder so
 * its imports of `../shared` and `@azure/functions` resolve. Removed by the returned function.
 */
export async function fixtureCopy(
  app: string,
  files: Record<string, string>,
): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = join(FIXTURE_APPS, `tmp-${randomUUID()}`);
  await mkdir(dir);
  await cp(join(FIXTURE_APPS, app), dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
