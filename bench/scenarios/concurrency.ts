import { MiB } from '../bodies.js';
import { runClient, type Server } from '../children.js';
import type { ConcurrentUploadsJob, JobResult, Target } from '../jobs.js';
import type { Plan } from '../plan.js';
import type { ConcurrencyResults } from '../results.js';
import { FUNCTION_KEY } from '../stack.js';
import { percentile, summarize } from '../stats.js';
import { rotated, uniqueId, type Log } from './common.js';

interface Sample {
  mibPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Many uploads at once, bridge versus direct: total rate and the latency of each upload. */
export async function measureConcurrency(
  plan: Plan,
  servers: { sink: Server; bridge: Server },
  log: Log,
): Promise<ConcurrencyResults> {
  const paths: { name: 'bridge' | 'direct'; target: Target }[] = [
    { name: 'bridge', target: { kind: 'bridge', origin: servers.bridge.origin, functionKey: FUNCTION_KEY } },
    { name: 'direct', target: { kind: 'sink', origin: servers.sink.origin } },
  ];
  const { bytes, concurrency, perWorker } = plan.concurrency;
  const job = (target: Target, name: string, rounds: number): ConcurrentUploadsJob => ({
    type: 'concurrent-uploads',
    target,
    bytes,
    concurrency,
    perWorker: rounds,
    idPrefix: uniqueId(`cc-${name}`),
  });

  // Warm-up: every connection of both pools opened and the code paths compiled.
  for (const { name, target } of paths) await runClient<JobResult>(job(target, name, 1), plan.jobTimeoutMs);

  const samples = new Map<string, Sample[]>(paths.map(({ name }) => [name, []]));
  for (let run = 0; run < plan.runs; run++) {
    for (const { name, target } of rotated(paths, run)) {
      const result = await runClient<JobResult>(job(target, name, perWorker), plan.jobTimeoutMs);
      const sample = {
        mibPerSecond: result.bytes / MiB / result.seconds,
        p50Ms: percentile(result.latenciesMs, 50),
        p99Ms: percentile(result.latenciesMs, 99),
      };
      samples.get(name)!.push(sample);
      log(
        `concurrency run ${run + 1}/${plan.runs} ${name}: ${sample.mibPerSecond.toFixed(0)} MiB/s, ` +
          `p50 ${sample.p50Ms.toFixed(0)} ms, p99 ${sample.p99Ms.toFixed(0)} ms`,
      );
    }
  }
  const figures = (name: string) => {
    const list = samples.get(name)!;
    return {
      mibPerSecond: summarize(list.map((s) => s.mibPerSecond)),
      p50Ms: summarize(list.map((s) => s.p50Ms)),
      p99Ms: summarize(list.map((s) => s.p99Ms)),
    };
  };
  return { bytes, concurrency, perWorker, bridge: figures('bridge'), direct: figures('direct') };
}
