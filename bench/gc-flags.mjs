// Node flags of the Functions worker (or the node:http adapter) side by side, interleaved in one run:
// per round and flag set, one upload's MiB/s, the process's CPU s/GiB, its full collections
// (Mark-Compact) and scavenges (from --trace-gc in its log) and its peak RSS. How the semi-space
// setting was chosen (docs/performance.md). With CLIENTS=64, each measurement is 64 clients uploading
// two files of MIB MiB each at once instead of one upload, and the uploads' p99 is given too.
// Needs `npm run build && tsc -p bench` first.
// Usage: CONFIGS='["--max-semi-space-size=1","--max-semi-space-size=8",""]' ROUNDS=3 MIB=512 \
//        WHICH=worker node bench/gc-flags.mjs
//        CONFIGS='["--max-semi-space-size=1","--max-semi-space-size=4"]' CLIENTS=64 MIB=8 ROUNDS=4 \
//        node bench/gc-flags.mjs
import { readFileSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { cpuSecondsOf, peakRssOf, resetPeakRss, runClient, stopAll } from '../dist/bench/children.js';
import { bridgeTarget } from '../dist/bench/scenarios/common.js';
import { startBridgeWithFlags, startSink, startStorage } from '../dist/bench/stack.js';

const LOGS = fileURLToPath(new URL('../.bench-tmp/logs/', import.meta.url));
const configs = JSON.parse(process.env.CONFIGS ?? '["--max-semi-space-size=1",""]');
const rounds = Number(process.env.ROUNDS ?? 3);
const mib = Number(process.env.MIB ?? 1024);
const which = process.env.WHICH ?? 'worker';
const clients = Number(process.env.CLIENTS ?? 1);
/** One upload, or `clients` at once making `perClient` uploads each. */
const job = (group, id, bytes, perClient) =>
  clients > 1
    ? {
        type: 'concurrent-uploads',
        target: bridgeTarget(group),
        bytes,
        concurrency: clients,
        perWorker: perClient,
        idPrefix: id,
      }
    : { type: 'upload', target: bridgeTarget(group), bytes, id };

const sink = await startSink();
const storage = await startStorage();
const groups = [];
for (const [i, config] of configs.entries()) {
  const flags = config.split(' ').filter(Boolean);
  const label = which === 'worker' ? `gcw${i}` : `gca${i}`;
  const group = await startBridgeWithFlags(
    which,
    sink,
    storage.connectionString,
    [...flags, '--trace-gc'],
    label,
  );
  const log = readdirSync(LOGS)
    .filter((name) => name.includes(label))
    .sort()
    .at(-1);
  groups.push({ config, group, log, label });
  // Warm-up.
  await runClient(job(group, `w${i}`, clients > 1 ? mib << 20 : 64 << 20, 1), 600_000);
}
for (let round = 0; round < rounds; round++) {
  for (const { config, group, log, label } of round % 2 ? [...groups].reverse() : groups) {
    const member = group.members.at(-1);
    const path = `${LOGS}${log}`;
    const before = readFileSync(path, 'utf8').length;
    await resetPeakRss(member.pid);
    const cpuBefore = await cpuSecondsOf(member.pid);
    const load = loadavg()[0];
    const result = await runClient(job(group, `m${round}-${label}`, mib << 20, 2), 900_000);
    const cpu = (await cpuSecondsOf(member.pid)) - cpuBefore;
    const rss = (await peakRssOf(member.pid)) / 2 ** 20;
    const text = readFileSync(path, 'utf8').slice(before);
    const fulls = (text.match(/Mark-Compact/g) ?? []).length;
    const scavenges = (text.match(/Scavenge/g) ?? []).length;
    const latencies = [...result.latenciesMs].sort((a, b) => a - b);
    const p99 = clients > 1 ? `  p99 ${latencies[Math.ceil(latencies.length * 0.99) - 1].toFixed(0)} ms` : '';
    console.log(
      `[${config || 'no flags'}] ${(result.bytes / 2 ** 20 / result.seconds).toFixed(0)} MiB/s  ` +
        `${which} ${(cpu / (result.bytes / 2 ** 30)).toFixed(2)} CPU s/GiB  full GCs ${fulls}  ` +
        `scavenges ${scavenges}  peak RSS ${rss.toFixed(0)} MiB${p99}  load ${load.toFixed(1)}`,
    );
  }
}
for (const { group } of groups) await group.stop();
await stopAll();
