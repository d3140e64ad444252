import { spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { watch } from 'node:fs';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CLIENT_READY } from './jobs.js';

/** Built entry points, found from this file's place in dist/bench/. */
export const ENTRY = {
  sink: fileURLToPath(new URL('../src/emulator/main.js', import.meta.url)),
  adapter: fileURLToPath(new URL('./direct-host.js', import.meta.url)),
  functions: fileURLToPath(new URL('./functions-host.js', import.meta.url)),
  proxy: fileURLToPath(new URL('./tcp-proxy.js', import.meta.url)),
  floor: fileURLToPath(new URL('./floor.js', import.meta.url)),
  smallFloor: fileURLToPath(new URL('./small-floor.js', import.meta.url)),
  uploadFloor: fileURLToPath(new URL('./upload-floor.js', import.meta.url)),
  client: fileURLToPath(new URL('./client.js', import.meta.url)),
};

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
/** Output kept per process, for the error message when something fails. */
const OUTPUT_TAIL_CHARS = 16_384;
/** Linux reports process CPU time in clock ticks of 1/100 s (USER_HZ). */
const CLOCK_TICKS_PER_SECOND = 100;

const running = new Set<ChildProcess>();

/** A server process of the benchmark: the sink, the bridge, the TCP proxy or the naive handler. */
export interface Server {
  readonly name: string;
  readonly pid: number;
  /** The origin it printed as ready, e.g. `http://127.0.0.1:41234`. */
  readonly origin: string;
  readonly logFile: string;
  /** The end of its log. */
  output(): Promise<string>;
  /** VmHWM: the most resident memory the process has had, in bytes. */
  peakRss(): Promise<number>;
  /** User + system CPU time used so far, in seconds. */
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

export interface StartOptions {
  name: string;
  entry: string;
  env: Record<string, string>;
  /** Matches the ready line; group 1 is the origin. */
  ready: RegExp;
  /** stdout and stderr go to this file. */
  logFile: string;
  nodeArgs?: string[];
  /** Arguments after the entry point. */
  args?: string[];
}

/**
 * Starts a server process. Its output goes to a log file, not a pipe: the bridge logs every request,
 * and a pipe would put this process (and its wake-ups) inside the path being measured.
 */
export async function startServer({
  name,
  entry,
  env,
  ready,
  logFile,
  nodeArgs = [],
  args = [],
}: StartOptions): Promise<Server> {
  await mkdir(dirname(logFile), { recursive: true });
  const log = await open(logFile, 'w');
  // Watching before the process starts, so the ready line cannot slip past.
  const watcher = watch(logFile);
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...nodeArgs, entry, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', log.fd, log.fd],
    });
  } finally {
    await log.close();
  }
  running.add(child);
  child.once('exit', () => running.delete(child));
  const output = async () => (await readFile(logFile, 'utf8')).slice(-OUTPUT_TAIL_CHARS);

  const origin = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(`did not start within ${READY_TIMEOUT_MS} ms`), READY_TIMEOUT_MS);
    const check = () => {
      void output().then((text) => {
        const match = ready.exec(text);
        if (match?.[1]) {
          cleanup();
          resolve(match[1]);
        }
      }, reject);
    };
    const exited = (code: number | null) => fail(`exited (${code}) before it was ready`);
    const failedToStart = (err: Error) => fail(`could not start: ${err.message}`);
    const fail = (why: string) => {
      cleanup();
      void output().then(
        (text) => reject(new Error(`${name} ${why} (${logFile}):\n${text}`)),
        () => reject(new Error(`${name} ${why}`)),
      );
    };
    const cleanup = () => {
      clearTimeout(timer);
      watcher.close();
      child.off('exit', exited);
      child.off('error', failedToStart);
    };
    watcher.on('change', check);
    child.once('exit', exited);
    child.once('error', failedToStart);
    check();
  }).catch(async (err: unknown) => {
    await stopChild(child);
    throw err;
  });

  const pid = child.pid!;
  return {
    name,
    pid,
    origin,
    logFile,
    output,
    peakRss: () => peakRssOf(pid),
    cpuSeconds: () => cpuSecondsOf(pid),
    stop: () => stopChild(child),
  };
}

/** VmHWM: the most resident memory the process has had (since the last `resetPeakRss`), in bytes. */
export async function peakRssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmHWM for ${pid}`);
  return Number(kib) * 1024;
}

/** Resident memory now, in bytes. */
export async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(kib) * 1024;
}

/** Starts the peak over (Linux: writing 5 to clear_refs resets VmHWM to the current RSS). */
export async function resetPeakRss(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

/** User + system CPU time the process (all its threads) used so far, in seconds. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** SIGTERM, then SIGKILL if it has not exited in time. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** Stops every process this benchmark started and has not stopped yet. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map(stopChild));
}

/** Last resort on exit: nothing the benchmark started may outlive it. */
export function killAllNow(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** A load generator process on one job: its stderr's tail as it comes, and its JSON answer once it exits. */
interface ClientProcess<T> {
  child: ChildProcessByStdio<null, Readable, Readable>;
  stderr(): string;
  /** Resolves with the answer once the process closed with code 0; throws with its stderr otherwise. */
  answer(): Promise<T>;
}

function spawnClient<T>(job: unknown, timeoutMs: number): ClientProcess<T> {
  const child = spawn(process.execPath, [ENTRY.client, JSON.stringify(job)], {
    env: { PATH: process.env.PATH ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on(
    'data',
    (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-OUTPUT_TAIL_CHARS)),
  );
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  child.once('error', (err) => (stderr += `\n${err.message}`));
  // 'close', not 'exit': the answer is on stdout, which may still be flowing when the process exits.
  const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
  return {
    child,
    stderr: () => stderr,
    async answer() {
      const [code, signal] = await closed;
      clearTimeout(timer);
      running.delete(child);
      if (code !== 0) {
        throw new Error(
          `client ${signal === 'SIGKILL' ? `timed out after ${timeoutMs} ms` : `exited ${code ?? signal}`}:\n${stderr}`,
        );
      }
      return JSON.parse(stdout) as T;
    },
  };
}

/** Runs the load generator process on one job; resolves with its JSON answer. */
export function runClient<T>(job: unknown, timeoutMs: number): Promise<T> {
  return spawnClient<T>(job, timeoutMs).answer();
}

/** A load generator that runs until stopped (tricklers): `ready` once it says so, `stop()` for its answer. */
export interface LongClient<T> {
  ready: Promise<void>;
  stop(): Promise<T>;
}

export function startClient<T>(job: unknown, timeoutMs: number): LongClient<T> {
  const client = spawnClient<T>(job, timeoutMs);
  const answer = client.answer();
  answer.catch(() => undefined);
  const ready = new Promise<void>((resolve, reject) => {
    client.child.stderr.on('data', () => {
      if (client.stderr().includes(CLIENT_READY)) resolve();
    });
    const notReady = () => reject(new Error(`client exited before it was ready:\n${client.stderr()}`));
    void answer.then(notReady, notReady);
  });
  ready.catch(() => undefined);
  return {
    ready,
    stop() {
      client.child.kill('SIGTERM');
      return answer;
    },
  };
}
