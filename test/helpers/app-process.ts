import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { recordOutput } from './scrape.js';

/**
 * One app instance in a process group of its own (test/helpers/host-process.mjs: the local Functions
 * host and its worker running the built app), so that a test can kill it the way a platform recycles
 * an instance. Settings come from `env`.
 */
export interface AppProcess {
  child: ChildProcess;
  url: string;
  /** Everything it printed so far. */
  output(): string;
  /** The app's own log lines (JSON in the host's records), parsed. */
  lines(): Record<string, unknown>[];
  /** Resolves with the first app line that matches, as soon as it is printed. */
  line(
    match: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Kills host and worker at once: no warning, no clean exit. */
  kill(): Promise<void>;
}

export async function startAppProcess(
  env: Record<string, string>,
  options: Record<string, unknown> = {},
): Promise<AppProcess> {
  const child = spawn(process.execPath, ['test/helpers/host-process.mjs', JSON.stringify(options)], {
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    recordOutput(chunk.toString());
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const match = /HOST READY (\S+)/.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => reject(new Error(`the instance exited (${code}):\n${output}`)));
  });
  const lines = () => appLines(output);
  return {
    child,
    url,
    output: () => output,
    lines,
    line(match, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const look = () => {
          const found = lines().find(match);
          if (!found) return false;
          clearTimeout(timer);
          child.stdout.off('data', look);
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          child.stdout.off('data', look);
          reject(new Error(`no such log line in time; the instance's output ends:\n${output.slice(-3000)}`));
        }, timeoutMs);
        if (!look()) child.stdout.on('data', look);
      });
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(-child.pid!, 'SIGKILL');
      await once(child, 'exit');
    },
  };
}

/** The app's own lines (JSON in the host's records) in an instance's output. */
function appLines(output: string): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const text of output.split('\n')) {
    try {
      const record = JSON.parse(text) as { message?: unknown };
      if (typeof record.message === 'string' && record.message.startsWith('{'))
        lines.push(JSON.parse(record.message) as Record<string, unknown>);
    } catch {
      // not a log record
    }
  }
  return lines;
}
