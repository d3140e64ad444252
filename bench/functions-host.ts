// The bridge as Azure runs it: the local Functions host (host process) forwarding to a worker process
// that runs this app through @azure/functions' streaming path, as `npm start` does, minus the local
// stand-ins (the benchmark starts its own sink). BENCH_WORKER_NODE_ARGS: node flags for the worker
// (default: those the README recommends for Azure); BENCH_WORKER_EXTRA_ARGS are added to them (the
// benchmark's --cpu-prof, which NODE_OPTIONS does not take). BENCH_APP_DIR runs another app folder
// instead (the Functions floor, bench/functions-floor/).
import { fileURLToPath } from 'node:url';
import { startFunctionsHost } from '../src/functions-host/host.js';
import { RECOMMENDED_NODE_OPTIONS, tuneRuntime } from '../src/runtime.js';

// As `npm start` does for its host process (src/devhost/main.ts).
await tuneRuntime({});
const APP_DIR = process.env.BENCH_APP_DIR ?? fileURLToPath(new URL('../../', import.meta.url));
const words = (value: string | undefined) => (value ?? '').split(' ').filter(Boolean);

const workerNodeArgs = [
  ...(process.env.BENCH_WORKER_NODE_ARGS === undefined
    ? RECOMMENDED_NODE_OPTIONS
    : words(process.env.BENCH_WORKER_NODE_ARGS)),
  ...words(process.env.BENCH_WORKER_EXTRA_ARGS),
];
const env = { ...process.env };
delete env.BENCH_WORKER_NODE_ARGS;
delete env.BENCH_WORKER_EXTRA_ARGS;
delete env.BENCH_APP_DIR;
const host = await startFunctionsHost({
  appDir: APP_DIR,
  env,
  localSettings: false,
  port: 0,
  functionKey: process.env.DEV_FUNCTION_KEY,
  workerNodeArgs,
});
console.log(`functions host (worker ${host.worker.pid}) listening on ${host.url}/${host.routePrefix}`);
process.once('SIGTERM', () => {
  void host.close().finally(() => process.exit(0));
});
