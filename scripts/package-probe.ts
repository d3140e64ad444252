/**
 * Loads a packaged app's entry in a fresh Node process, as the Functions worker would, and times it:
 * the worker's `@azure/functions-core` is a stand-in that records what the app registers (hooked
 * into CommonJS `require` the way the worker hooks it), and an optional first request goes straight
 * to the registered handler. Shared by the package test and the package benchmark.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';

export interface ProbeRequest {
  /** The registered function to invoke, e.g. `createAttachments`. */
  functionName: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface ProbeOptions {
  /** Absolute path of the entry module (the package's `main`). */
  main: string;
  /** The child's whole environment: app settings, nothing inherited. */
  env: Record<string, string>;
  /** A first invocation, answered through the app's own handler. */
  request?: ProbeRequest;
  /** Modules to import after the entry (e.g. every lazy chunk), to prove they load. */
  importAfter?: string[];
}

export interface ProbeRegistration {
  name: string;
  trigger: Record<string, unknown> | undefined;
}

export interface ProbeResult {
  /** From just before `import(main)` to its end. */
  loadMs: number;
  registrations: ProbeRegistration[];
  /** How often the app asked `require` for `@azure/functions-core`. */
  coreRequests: number;
  answer?: { status: number; headers: Record<string, string>; body: string; ms: number };
  /** Resident set size after the entry loaded and, when there was one, after the first answer. */
  rssAfterLoadMiB: number;
  rssAfterAnswerMiB?: number;
  /** What went wrong in the child, if anything (the stack). */
  error?: string;
  /** The child's own output (the app's log lines). */
  output: string;
}

/** The child: ESM, given its options in PROBE_OPTIONS, answering over IPC so the app keeps stdout. */
const CHILD_SOURCE = `
import Module from 'node:module';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const options = JSON.parse(process.env.PROBE_OPTIONS);
delete process.env.PROBE_OPTIONS;
const registrations = [];
const callbacks = new Map();
let coreRequests = 0;
const core = {
  log: () => {},
  setProgrammingModel: () => {},
  registerHook: () => ({ dispose: () => {} }),
  registerFunction: (metadata, callback) => {
    const trigger = Object.values(metadata.bindings ?? {}).find((b) => /Trigger$/.test(String(b.type)));
    registrations.push({ name: metadata.name, trigger });
    callbacks.set(metadata.name, callback);
    return { dispose: () => {} };
  },
};
// As the worker does (setupCoreModule): the module exists only for require calls by that name.
Module.prototype.require = new Proxy(Module.prototype.require, {
  apply(target, thisArg, args) {
    if (args[0] === '@azure/functions-core') {
      coreRequests += 1;
      return core;
    }
    return Reflect.apply(target, thisArg, args);
  },
});
const mib = () => Math.round((process.memoryUsage().rss / 1048576) * 10) / 10;
const result = { registrations };
const start = performance.now();
try {
  await import(pathToFileURL(options.main).href);
  result.loadMs = performance.now() - start;
  result.rssAfterLoadMiB = mib();
  if (options.request) {
    const { functionName, url, headers, body } = options.request;
    const handler = callbacks.get(functionName);
    if (!handler) throw new Error('no function registered as ' + functionName);
    const response = await handler(new Request(url, { method: 'POST', headers, body }), {
      invocationId: 'probe',
      functionName,
      log: () => {},
      info: () => {},
      warn: () => {},
      error: () => {},
    });
    const text = await new Response(response.body ?? null).text();
    result.answer = { status: response.status ?? 200, headers: response.headers ?? {}, body: text, ms: performance.now() - start };
    result.rssAfterAnswerMiB = mib();
  }
  for (const file of options.importAfter ?? []) await import(pathToFileURL(file).href);
} catch (error) {
  result.error = String(error?.stack ?? error);
}
result.coreRequests = coreRequests;
process.send(result, () => process.exit(0));
`;

/** Runs the probe in a fresh process and returns what it saw; rejects only if the child never reports. */
export async function runProbe(options: ProbeOptions, timeoutMs = 60_000): Promise<ProbeResult> {
  const child = spawn(process.execPath, ['--input-type=module', '--eval', CHILD_SOURCE], {
    env: { ...options.env, PROBE_OPTIONS: JSON.stringify(options) },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = ''; // both pipes are set up above
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  let report: Omit<ProbeResult, 'output'> | undefined;
  child.once('message', (message) => (report = message as Omit<ProbeResult, 'output'>));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    // 'close' comes after the process exited and its pipes, the IPC channel included, were read to the end.
    await once(child, 'close');
  } finally {
    clearTimeout(timer);
  }
  if (!report) throw new Error(`the probe exited without a report (code ${child.exitCode}):\n${output}`);
  return { ...report, output };
}
