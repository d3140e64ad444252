import { runClient, type Server } from '../children.js';
import type { ConcurrentUploadsJob, JobResult, Target } from '../jobs.js';
import type { Plan } from '../plan.js';
import { emptyScenario, record, type ScenarioResult } from '../results.js';
import type { Member } from '../stack.js';
import { percentile } from '../stats.js';
import {
  bridgeTarget,
  GiB,
  measure,
  MiB,
  recordCosts,
  rotated,
  rowName,
  uniqueId,
  type Bridges,
  type Log,
} from './common.js';

/** Many uploads at once, each bridge beside direct: total rate, latency of each upload, CPU and peak memory. */
export async function measureConcurrency(
  plan: Plan,
  servers: { sink: Server; bridges: Bridges[] },
  log: Log,
): Promise<ScenarioResult> {
  const { sink, bridges } = servers;
  const paths: { name: string; target: Target; members: Member[] }[] = [
    { name: 'direct', target: { kind: 'sink', origin: sink.origin }, members: [] },
  ];
  for (const { build, adapter, functions } of bridges) {
    paths.push(
      { name: rowName(build, 'adapter'), target: bridgeTarget(adapter), members: adapter.members },
      { name: rowName(build, 'functions'), target: bridgeTarget(functions), members: functions.members },
    );
  }
  const { bytes, concurrency, perWorker } = plan.concurrency;
  const result = emptyScenario({ bytes, concurrency, perWorker });
  const job = (target: Target, name: string, rounds: number): ConcurrentUploadsJob => ({
    type: 'concurrent-uploads',
    target,
    bytes,
    concurrency,
    perWorker: rounds,
    idPrefix: uniqueId(`cc-${name.replace(/\W+/g, '-')}`),
  });

  // Warm-up: every connection of the pools opened and the code paths compiled.
  for (const { name, target } of paths) await runClient<JobResult>(job(target, name, 1), plan.jobTimeoutMs);

  for (let run = 0; run < plan.runs; run++) {
    for (const { name, target, members } of rotated(paths, run)) {
      const costs = await measure(members, sink, () =>
        runClient<JobResult>(job(target, name, perWorker), plan.jobTimeoutMs),
      );
      const { latenciesMs, seconds } = costs.result;
      const mibPerSecond = costs.result.bytes / MiB / seconds;
      record(result, name, 'MiB/s', mibPerSecond);
      record(result, name, 'p50', percentile(latenciesMs, 50));
      record(result, name, 'p99', percentile(latenciesMs, 99));
      recordCosts(result, name, costs, members, costs.result.bytes / GiB);
      log(
        `concurrency run ${run + 1}/${plan.runs} ${name}: ${mibPerSecond.toFixed(0)} MiB/s, ` +
          `p50 ${percentile(latenciesMs, 50).toFixed(0)} ms, p99 ${percentile(latenciesMs, 99).toFixed(0)} ms, ` +
          `peak RSS ${members.map((m) => `${m.label} ${(costs.peakRss[m.label]! / MiB).toFixed(0)}`).join(', ') || '-'} MiB (load ${costs.load.toFixed(2)})`,
      );
    }
  }
  return result;
}
