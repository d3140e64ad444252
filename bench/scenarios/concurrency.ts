import { runClient, type Server } from '../children.js';
import type { ConcurrentUploadsJob, JobResult, Target } from '../jobs.js';
import type { Plan } from '../plan.js';
import { emptyScenario, record, type ScenarioResult } from '../results.js';
import type { Group } from '../stack.js';
import { percentile } from '../stats.js';
import {
  bridgePaths,
  bridgeTarget,
  directPath,
  GiB,
  inTurns,
  measure,
  MiB,
  recordCosts,
  rowName,
  uniqueId,
  type Bridges,
  type Log,
} from './common.js';

/**
 * Many uploads at once, each bridge beside direct and the least Functions app: total rate, latency of
 * each upload, CPU and peak memory.
 */
export async function measureConcurrency(
  plan: Plan,
  servers: { sink: Server; functionsFloor: Group; bridges: Bridges[] },
  log: Log,
): Promise<ScenarioResult> {
  const { sink, functionsFloor, bridges } = servers;
  const paths = [
    directPath(sink),
    { name: 'functions floor', target: bridgeTarget(functionsFloor), members: functionsFloor.members },
    ...bridgePaths(bridges, ({ build, kind, group }) => [
      { name: rowName(build, kind), target: bridgeTarget(group), members: group.members },
    ]),
  ];
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

  await inTurns(plan.runs, paths, async ({ name, target, members }, run) => {
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
  });
  return result;
}
