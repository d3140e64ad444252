// The host's side of the worker: it forks the worker process (on the Node that runs the host),
// initializes it with the app folder, and exchanges invocations and logs with it over IPC.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { toLogLevel, type HostLogs } from './host-logs.js';
import type {
  FunctionMetadata,
  HostToWorker,
  InvocationRequest,
  InvocationResponse,
  RpcLog,
  WorkerToHost,
} from './protocol.js';

/** The Functions host version this host stands in for (passed to the worker as `hostVersion`). */
export const HOST_VERSION = '4.1041.200';

export class WorkerExitedError extends Error {}

export interface WorkerChannelOptions {
  appDir: string;
  env: Record<string, string | undefined>;
  logs: HostLogs;
  /** Extra Node options for the worker process, e.g. `--max-semi-space-size=1`. */
  nodeArgs?: string[];
  /** How long the worker may take to load the app. */
  startTimeoutMs?: number;
}

/** The compiled worker script: next to this module in dist, or in dist when running from sources. */
export function workerScript(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return join(dirname(here), 'worker', 'main.js');
  const root = resolve(dirname(here), '..', '..');
  const compiled = join(root, 'dist', 'src', 'functions-host', 'worker', 'main.js');
  if (!existsSync(compiled)) {
    throw new Error(`The worker script ${compiled} is missing: run "npm run build" first.`);
  }
  return compiled;
}

export class WorkerChannel {
  readonly #child: ChildProcess;
  readonly #logs: HostLogs;
  readonly #pending = new Map<
    string,
    { resolve: (r: InvocationResponse) => void; reject: (e: Error) => void }
  >();
  readonly #exitListeners: ((code: number | null, signal: NodeJS.Signals | null) => void)[] = [];
  readonly exited: Promise<void>;
  functions: FunctionMetadata[] = [];
  capabilities: Record<string, string> = {};
  loadError: string | undefined;

  private constructor(child: ChildProcess, logs: HostLogs) {
    this.#child = child;
    this.#logs = logs;
    this.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        const error = new WorkerExitedError(
          `The worker process ${child.pid} exited (${signal ?? `code ${code}`}) during the invocation.`,
        );
        for (const pending of this.#pending.values()) pending.reject(error);
        this.#pending.clear();
        for (const listener of this.#exitListeners) listener(code, signal);
        resolveExit();
      });
    });
  }

  static async start(options: WorkerChannelOptions): Promise<WorkerChannel> {
    const child = fork(workerScript(), [], {
      cwd: options.appDir,
      env: options.env,
      execPath: process.execPath,
      execArgv: options.nodeArgs ?? [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    const channel = new WorkerChannel(child, options.logs);
    channel.#forwardConsole();
    const ready = new Promise<void>((resolveReady, rejectReady) => {
      const timer = setTimeout(
        () =>
          rejectReady(new Error(`The worker did not start within ${options.startTimeoutMs ?? 60_000} ms.`)),
        options.startTimeoutMs ?? 60_000,
      );
      const onExit = (code: number | null) => {
        clearTimeout(timer);
        rejectReady(new WorkerExitedError(`The worker process exited (code ${code}) before it was ready.`));
      };
      child.once('exit', onExit);
      child.on('message', (message: WorkerToHost) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          child.off('exit', onExit);
          channel.functions = message.functions;
          channel.capabilities = message.capabilities;
          channel.loadError = message.loadError;
          resolveReady();
        } else {
          channel.#receive(message);
        }
      });
    });
    channel.#send({ type: 'init', appDir: options.appDir, hostVersion: HOST_VERSION });
    try {
      await ready;
    } catch (err) {
      channel.kill();
      throw err;
    }
    return channel;
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  get alive(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** The worker's HTTP proxy (capability `HttpUri`), when the app enabled HTTP streaming. */
  get httpUri(): URL | undefined {
    const uri = this.capabilities.HttpUri;
    return uri ? new URL(uri) : undefined;
  }

  onExit(listener: (code: number | null, signal: NodeJS.Signals | null) => void): void {
    this.#exitListeners.push(listener);
  }

  invoke(request: InvocationRequest): Promise<InvocationResponse> {
    if (!this.alive) return Promise.reject(new WorkerExitedError('The worker process is not running.'));
    return new Promise((resolveInvocation, rejectInvocation) => {
      this.#pending.set(request.invocationId, { resolve: resolveInvocation, reject: rejectInvocation });
      this.#send({ type: 'invoke', request });
    });
  }

  /** Runs the app's appTerminate hooks, then the worker exits (killed after the grace period). */
  async terminate(gracePeriodMs: number): Promise<void> {
    if (!this.alive) return;
    this.#send({ type: 'terminate', gracePeriodMs });
    const timer = setTimeout(() => this.kill(), gracePeriodMs + 1000);
    await this.exited;
    clearTimeout(timer);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive) this.#child.kill(signal);
  }

  #send(message: HostToWorker): void {
    if (this.#child.connected) this.#child.send(message);
  }

  #receive(message: WorkerToHost): void {
    if (message.type === 'log') this.#log(message.log);
    else if (message.type === 'invocationResponse') {
      const pending = this.#pending.get(message.response.invocationId);
      this.#pending.delete(message.response.invocationId);
      pending?.resolve(message.response);
    }
  }

  #log(log: RpcLog): void {
    if (log.level === 'none') return;
    const functionName = log.category?.replace(/\.Invocation$/, '');
    let category = 'Worker.Node';
    if (log.invocationId && functionName) {
      category = log.logCategory === 'user' ? `Function.${functionName}.User` : `Function.${functionName}`;
    }
    this.#logs.write({
      level: toLogLevel(log.level),
      category,
      message: log.message,
      source: 'worker',
      logCategory: log.logCategory,
      ...(log.invocationId ? { invocationId: log.invocationId } : {}),
      ...(log.invocationId && functionName ? { functionName } : {}),
    });
  }

  /** What the worker prints reaches the host's log, as the host captures the worker's console. */
  #forwardConsole(): void {
    const lines = (stream: NodeJS.ReadableStream | null, level: 'information' | 'error') => {
      if (!stream) return;
      createInterface({ input: stream }).on('line', (line) =>
        this.#logs.write({ level, category: 'Host.Function.Console', message: line, source: 'worker' }),
      );
    };
    lines(this.#child.stdout, 'information');
    lines(this.#child.stderr, 'error');
  }
}
