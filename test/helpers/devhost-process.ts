import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { recordOutput, recordSecret } from './scrape.js';

export const DEV_HOST_ENTRY = resolve('dist/src/devhost/main.js');

/** `npm start` without the build step: the built dev host in its own process, as a user runs it. */
export interface DevHostProcess {
  child: ChildProcess;
  url: string;
  emulatorUrl: string | undefined;
  output: () => string;
  /**
   * Peak resident memory (VmHWM) so far, in bytes, of the host process, or of the worker process it
   * runs the app in (the bridge itself).
   */
  peakRss(which?: 'host' | 'worker'): Promise<number>;
  /** Ctrl-C, and the exit code. */
  interrupt(): Promise<number | null>;
}

/** The local Functions host's worker: the child process running its worker script. */
async function workerPid(hostPid: number): Promise<number> {
  const children = (await readFile(`/proc/${hostPid}/task/${hostPid}/children`, 'utf8')).trim().split(/\s+/);
  for (const pid of children) {
    const command = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (command.includes('functions-host')) return Number(pid);
  }
  throw new Error(`no worker process under ${hostPid}`);
}

export async function startDevHostProcess(env: Record<string, string>): Promise<DevHostProcess> {
  if (!existsSync(DEV_HOST_ENTRY))
    throw new Error(`${DEV_HOST_ENTRY} is missing: run "npm run build" first.`);
  recordSecret(env.DEV_FUNCTION_KEY, env.COSMOS_KEY);
  const child = spawn(process.execPath, [DEV_HOST_ENTRY], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const ready = await new Promise<RegExpMatchArray>((resolvePromise, reject) => {
    const check = () => {
      const match = /listening on (http:\/\/\S+)\/api/.exec(output);
      if (match) {
        child.stdout.off('data', check);
        resolvePromise(match);
      }
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => reject(new Error(`dev host exited with ${code}:\n${output}`)));
  });
  const emulator = /Embedded Cosmos DB emulator on (http:\/\/\S+)/.exec(output);
  return {
    child,
    url: ready[1]!,
    emulatorUrl: emulator?.[1],
    output: () => output,
    async peakRss(which = 'worker') {
      const pid = which === 'host' ? child.pid! : await workerPid(child.pid!);
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const kib = /VmHWM:\s+(\d+) kB/.exec(status);
      if (!kib) throw new Error('VmHWM not found in /proc status');
      return Number(kib[1]) * 1024;
    },
    async interrupt() {
      if (child.exitCode === null) {
        child.kill('SIGINT');
        await once(child, 'exit');
      }
      for (const line of output.split('\n')) recordOutput(line);
      return child.exitCode;
    },
  };
}
