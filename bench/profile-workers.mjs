// Where the Functions worker's CPU goes for the bridge and for the least Functions app
// (bench/functions-floor.ts), one after the other under the same load: each in a fresh local
// Functions host with the worker under --cpu-prof, summarised as the benchmark summarises profiles
// (main thread, by category and by function). LOAD=upload: one upload of MIB MiB (default 2048);
// LOAD=concurrent: 64 clients, four 8 MiB uploads each. How docs/performance.md and BENCHMARKS.md
// say where the bridge's worker spends more than the floor app's. Needs `npm run build && tsc -p bench`.
// Usage: LOAD=concurrent TOP=30 node bench/profile-workers.mjs
import { mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runClient, stopAll } from '../dist/bench/children.js';
import { summarizeCpuProfiles } from '../dist/bench/profile-summary.js';
import { bridgeTarget } from '../dist/bench/scenarios/common.js';
import { startFunctions, startFunctionsFloor, startSink, startStorage } from '../dist/bench/stack.js';

const load = process.env.LOAD ?? 'upload';
const mib = Number(process.env.MIB ?? 2048);
const top = Number(process.env.TOP ?? 30);
const root = fileURLToPath(new URL('../.bench-tmp/profile-workers/', import.meta.url));

const sink = await startSink();
const storage = await startStorage();
for (const which of ['bridge', 'floor']) {
  const dir = `${root}${load}-${which}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const args = {
    host: ['--max-semi-space-size=1'],
    worker: [
      '--max-semi-space-size=1',
      '--cpu-prof',
      `--cpu-prof-dir=${dir}`,
      '--cpu-prof-name=worker.cpuprofile',
    ],
  };
  const group =
    which === 'bridge'
      ? await startFunctions(sink, storage.connectionString, args, [], 'profile-workers')
      : await startFunctionsFloor(sink, storage.connectionString, args);
  const id = `pw-${which}-${Date.now()}`;
  const job = (warmUp) =>
    load === 'concurrent'
      ? {
          type: 'concurrent-uploads',
          target: bridgeTarget(group),
          bytes: 8 << 20,
          concurrency: 64,
          perWorker: warmUp ? 1 : 4,
          idPrefix: `${id}-${warmUp ? 'w' : 'm'}`,
        }
      : {
          type: 'upload',
          target: bridgeTarget(group),
          bytes: (warmUp ? 32 : mib) * 2 ** 20,
          id: `${id}-${warmUp ? 'w' : 'm'}`,
        };
  await runClient(job(true), 600_000);
  await runClient(job(false), 900_000);
  await group.stop();
  console.log(`\n${which === 'bridge' ? 'the bridge' : 'the Functions floor'}, worker, ${load}:`);
  console.log(await summarizeCpuProfiles(dir, 'worker', top));
}
await stopAll();
