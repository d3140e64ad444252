import { runClient, type Server } from '../children.js';
import type { JobResult, SmallRequestsJob, Target } from '../jobs.js';
import type { Plan } from '../plan.js';
import type { SmallRequestLevel, SmallRequestResults } from '../results.js';
import { FUNCTION_KEY, POOL_SIZE, sinkStats } from '../stack.js';
import { percentile, summarize } from '../stats.js';
import { rotated, uniqueId, type Log } from './common.js';

const WARM_UP_REQUESTS = 500;

interface Sample {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * JSON metadata creates, bridge versus direct, one client after another (the latency a request pays
 * for the extra hop) and many at once (requests per second); and how many connections the bridge
 * opened upstream for all of them (its keep-alive pool should reuse a few).
 */
export async function measureSmallRequests(
  plan: Plan,
  servers: { sink: Server; bridge: Server },
  log: Log,
): Promise<SmallRequestResults> {
  const { sink, bridge } = servers;
  const paths: { name: 'bridge' | 'direct'; target: Target }[] = [
    { name: 'bridge', target: { kind: 'bridge', origin: bridge.origin, functionKey: FUNCTION_KEY } },
    { name: 'direct', target: { kind: 'sink', origin: sink.origin } },
  ];
  const job = (target: Target, name: string, concurrency: number, count: number): SmallRequestsJob => ({
    type: 'small-requests',
    target,
    concurrency,
    requests: count,
    idPrefix: uniqueId(`sr-${name}`),
  });

  // Only the bridge talks to the sink while a bridge job runs, so the sink's counters are the bridge's.
  let upstreamConnectionsOpened = 0;
  let upstreamRequests = 0;
  const runJob = async (name: string, target: Target, concurrency: number, count: number) => {
    const before = name === 'bridge' ? await sinkStats(sink) : undefined;
    const result = await runClient<JobResult>(job(target, name, concurrency, count), plan.jobTimeoutMs);
    if (before) {
      const after = await sinkStats(sink);
      upstreamConnectionsOpened += after.connections - before.connections;
      upstreamRequests += after.requests - before.requests;
    }
    return result;
  };

  const maxConcurrency = Math.max(...plan.small.map((level) => level.concurrency));
  for (const { name, target } of paths) await runJob(name, target, maxConcurrency, WARM_UP_REQUESTS);

  const levels: SmallRequestLevel[] = [];
  for (const { concurrency, requests } of plan.small) {
    const samples = new Map<string, Sample[]>(paths.map(({ name }) => [name, []]));
    for (let run = 0; run < plan.runs; run++) {
      for (const { name, target } of rotated(paths, run)) {
        const result = await runJob(name, target, concurrency, requests);
        const sample = {
          requestsPerSecond: result.latenciesMs.length / result.seconds,
          p50Ms: percentile(result.latenciesMs, 50),
          p99Ms: percentile(result.latenciesMs, 99),
        };
        samples.get(name)!.push(sample);
        log(
          `small requests x${concurrency} run ${run + 1}/${plan.runs} ${name}: ${sample.requestsPerSecond.toFixed(0)} req/s, ` +
            `p50 ${sample.p50Ms.toFixed(2)} ms, p99 ${sample.p99Ms.toFixed(2)} ms`,
        );
      }
    }
    const figures = (name: string) => {
      const list = samples.get(name)!;
      return {
        requestsPerSecond: summarize(list.map((s) => s.requestsPerSecond)),
        p50Ms: summarize(list.map((s) => s.p50Ms)),
        p99Ms: summarize(list.map((s) => s.p99Ms)),
      };
    };
    levels.push({ concurrency, requests, bridge: figures('bridge'), direct: figures('direct') });
  }
  return {
    levels,
    upstreamConnectionsOpened,
    upstreamRequests,
    poolSize: POOL_SIZE,
  };
}
