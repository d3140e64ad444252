// Peak RSS of the Functions worker (or the node:http adapter) round after round under many uploads at
// once, two processes of the same build side by side: one left to V8's own collection schedule, as the
// benchmark's concurrency section leaves it, and one given two full collections between rounds (through
// bench/heap-probe.mjs and --expose-gc). Per round: each one's peak RSS, and its heap and ArrayBuffer
// memory after the round (for the collected one, what is still live after the full collections: if
// that grows round by round, something leaks). How section 3 of docs/performance.md explains the
// spread of the worker's peak RSS. Needs `npm run build && tsc -p bench` first.
// Usage: CLIENTS=64 MIB=8 ROUNDS=6 WHICH=worker node bench/rss-rounds.mjs
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { peakRssOf, resetPeakRss, runClient, stopAll } from '../dist/bench/children.js';
import { bridgeTarget } from '../dist/bench/scenarios/common.js';
import { startBridgeWithFlags, startSink, startStorage } from '../dist/bench/stack.js';

const rounds = Number(process.env.ROUNDS ?? 6);
const mib = Number(process.env.MIB ?? 8);
const clients = Number(process.env.CLIENTS ?? 64);
const which = process.env.WHICH ?? 'worker';
const probe = fileURLToPath(new URL('./heap-probe.mjs', import.meta.url));
const probeDir = fileURLToPath(new URL('../.bench-tmp/heap-probe/', import.meta.url));

const sink = await startSink();
const storage = await startStorage();
const start = async (label, flags) => {
  const args = ['--max-semi-space-size=1', '--import', probe, ...flags];
  const group = await startBridgeWithFlags(which, sink, storage.connectionString, args, label);
  return { label, group, pid: group.members.at(-1).pid };
};
const job = (group, id) => ({
  type: 'concurrent-uploads',
  target: bridgeTarget(group),
  bytes: mib << 20,
  concurrency: clients,
  perWorker: 2,
  idPrefix: id,
});
/** Signals the probe and waits for its answer line (the bridge is idle: it comes within milliseconds). */
const readProbe = async (pid) => {
  const file = `${probeDir}${pid}.jsonl`;
  const lines = () => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : []);
  const had = lines().length;
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 10_000;
  while (lines().length === had) {
    if (Date.now() > deadline) throw new Error(`no answer from the heap probe of ${pid} (${file})`);
    await delay(20);
  }
  return JSON.parse(lines().at(-1));
};
const f = (n) => n.toFixed(0).padStart(4);

const runs = [await start('rss-v8', []), await start('rss-gc', ['--expose-gc'])];
for (const { group, label } of runs) await runClient(job(group, `w-${label}`), 900_000);
for (const { pid } of runs) await readProbe(pid);
console.log(`${which}, ${clients} clients x 2 uploads of ${mib} MiB per round; MiB`);
console.log('round | schedule            | peak RSS | after: RSS  heap used/total  ArrayBuffers | load');
for (let round = 0; round < rounds; round++) {
  for (const { group, label, pid } of round % 2 ? [...runs].reverse() : runs) {
    await resetPeakRss(pid);
    const load = loadavg()[0];
    await runClient(job(group, `r${round}-${label}`), 900_000);
    const peak = (await peakRssOf(pid)) / 2 ** 20;
    const { before, after } = await readProbe(pid);
    const m = after ?? before;
    const schedule = after ? 'full GCs between' : "V8's own";
    console.log(
      `${String(round + 1).padStart(5)} | ${schedule.padEnd(19)} | ${f(peak)}     | ${f(m.rss)} ${f(m.heapUsed)} / ${f(m.heapTotal)}  ${f(m.arrayBuffers)}         | ${load.toFixed(1)}`,
    );
  }
}
await stopAll();
