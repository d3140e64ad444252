import { setTimeout as delay } from 'node:timers/promises';
import { runClient, startClient, type Server } from '../children.js';
import type { JobResult, SmallUploadsJob, TrickleJob, TrickleResult } from '../jobs.js';
import type { Plan } from '../plan.js';
import { emptyScenario, record, type ScenarioResult } from '../results.js';
import type { Group } from '../stack.js';
import { percentile } from '../stats.js';
import { bridgeTarget, measure, rotated, uniqueId, type Log } from './common.js';

/** How long the tricklers run before the measurement starts (they take about 5 s to arrive, staggered). */
const SETTLE_MS = 2_000;

/**
 * Slow callers must not slow anyone else down: one caller's small uploads, one after another, with
 * and without `count` other uploads trickling a byte a second at the same bridge (each replaced when
 * the bridge cuts it off with 408), the two taking turns run by run.
 */
export async function measureTricklers(
  plan: Plan,
  servers: { sink: Server; bridges: Group[] },
  log: Log,
): Promise<ScenarioResult> {
  const { count, seconds, uploads, uploadBytes } = plan.tricklers;
  const result = emptyScenario({ count, uploads, uploadBytes });
  const small = (group: Group, requests: number): SmallUploadsJob => ({
    type: 'small-uploads',
    target: bridgeTarget(group),
    bytes: uploadBytes,
    requests,
    idPrefix: uniqueId('tk-small'),
  });
  for (const group of servers.bridges) await runClient<JobResult>(small(group, 50), plan.jobTimeoutMs);

  const modes = ['without', 'with'] as const;
  for (let run = 0; run < plan.runs; run++) {
    for (const group of servers.bridges) {
      const bridge = group.members.length > 1 ? 'functions' : 'adapter';
      for (const mode of rotated(modes, run)) {
        const trickle: TrickleJob = {
          type: 'trickle',
          target: bridgeTarget(group),
          count,
          maxSeconds: seconds,
          idPrefix: uniqueId('tk-slow'),
        };
        const tricklers =
          mode === 'with' ? startClient<TrickleResult>(trickle, plan.jobTimeoutMs) : undefined;
        if (tricklers) {
          await tricklers.ready;
          // Into the measurement, the bridge starts cutting the first of them off (408 after its
          // 5-second grace), and their replacements come in.
          await delay(SETTLE_MS);
        }
        const costs = await measure(group.members, servers.sink, () =>
          runClient<JobResult>(small(group, uploads), plan.jobTimeoutMs),
        );
        const slow = await tricklers?.stop();
        const latencies = costs.result.latenciesMs;
        const row = `${bridge} ${mode}`;
        record(result, row, 'p50', percentile(latencies, 50));
        record(result, row, 'p99', percentile(latencies, 99));
        result.load.push(costs.load);
        if (slow) {
          record(result, row, 'tricklers', slow.started);
          record(result, row, '408', slow.answers['408'] ?? 0);
        }
        log(
          `tricklers run ${run + 1}/${plan.runs} ${row}: p50 ${percentile(latencies, 50).toFixed(2)} ms, ` +
            `p99 ${percentile(latencies, 99).toFixed(2)} ms` +
            (slow ? `; ${slow.started} slow uploads, answers ${JSON.stringify(slow.answers)}` : '') +
            ` (load ${costs.load.toFixed(2)})`,
        );
      }
    }
  }
  return result;
}
