import { runClient, type Server } from '../children.js';
import type { Job, JobResult } from '../jobs.js';
import type { Plan } from '../plan.js';
import { emptyScenario, record, type ScenarioResult } from '../results.js';
import { FUNCTION_KEY, type Group } from '../stack.js';
import { percentile } from '../stats.js';
import {
  bridgePaths,
  bridgeTarget,
  directPath,
  measure,
  recordCosts,
  rotated,
  rowName,
  uniqueId,
  type Bridges,
  type Log,
  type Path,
} from './common.js';

const WARM_UP_REQUESTS = 300;

interface SmallPath extends Path {
  /** Another build's path (before-and-after figures): one client's requests only. */
  baseline: boolean;
  /** A small-request floor (bench/small-floor.ts, bench/functions-floor.ts): JSON creates only. */
  jsonOnly: boolean;
}

/**
 * Per-request cost, bridge beside direct and beside the floors (the least a Node bridge does for a
 * JSON create, on node:http and as a Functions app in the local Functions host): JSON metadata
 * creates one after another (latency and CPU per request) and from many clients at once (p99 under
 * load), and small files one after another (CPU per request, the ownership mark's replace included).
 */
export async function measureSmall(
  plan: Plan,
  servers: { sink: Server; floor: Server; functionsFloor: Group; bridges: Bridges[] },
  log: Log,
): Promise<ScenarioResult> {
  const { sink, floor, functionsFloor, bridges } = servers;
  const paths: SmallPath[] = [
    // Files go to the same origin as JSON creates: multipart to a bridge, raw media to the sink.
    { ...directPath(sink), baseline: false, jsonOnly: false },
    {
      name: 'floor',
      baseline: false,
      jsonOnly: true,
      target: { kind: 'bridge', origin: floor.origin, functionKey: FUNCTION_KEY, form: 'raw' },
      members: [{ label: 'floor', pid: floor.pid }],
    },
    {
      name: 'functions floor',
      baseline: false,
      jsonOnly: true,
      target: bridgeTarget(functionsFloor, 'raw'),
      members: functionsFloor.members,
    },
    ...bridgePaths(bridges, ({ build, kind, group }) => [
      {
        name: rowName(build, kind),
        baseline: build !== '',
        jsonOnly: false,
        target: bridgeTarget(group),
        members: group.members,
      },
    ]),
  ];
  const result = emptyScenario({
    fileBytes: plan.smallFiles.bytes,
    fileRequests: plan.smallFiles.requests,
  });
  const json = (path: SmallPath, concurrency: number, requests: number): Job => ({
    type: 'small-requests',
    target: path.target,
    concurrency,
    requests,
    idPrefix: uniqueId(`sr-${path.name.replace(/\W+/g, '-')}`),
  });
  const files = (path: SmallPath, requests: number): Job => ({
    type: 'small-uploads',
    target: path.target,
    bytes: plan.smallFiles.bytes,
    requests,
    idPrefix: uniqueId(`sf-${path.name.replace(/\W+/g, '-')}`),
  });

  const maxConcurrency = Math.max(...plan.small.map((level) => level.concurrency));
  for (const path of paths) {
    await runClient<JobResult>(json(path, maxConcurrency, WARM_UP_REQUESTS), plan.jobTimeoutMs);
    if (!path.jsonOnly) await runClient<JobResult>(files(path, 50), plan.jobTimeoutMs);
  }

  const levels = [
    ...plan.small.map(({ concurrency, requests }) => ({
      name: `json x${concurrency}`,
      concurrency,
      json: true,
      job: (path: SmallPath) => json(path, concurrency, requests),
    })),
    {
      name: 'file x1',
      concurrency: 1,
      json: false,
      job: (path: SmallPath) => files(path, plan.smallFiles.requests),
    },
  ];
  for (let run = 0; run < plan.runs; run++) {
    for (const level of levels) {
      for (const path of rotated(paths, run)) {
        if (path.baseline && level.concurrency > 1) continue;
        if (path.jsonOnly && !level.json) continue;
        const costs = await measure(path.members, sink, () =>
          runClient<JobResult>(level.job(path), plan.jobTimeoutMs),
        );
        const latencies = costs.result.latenciesMs;
        const row = path.baseline
          ? path.name.replace(': ', `: ${level.name} `)
          : `${level.name} ${path.name}`;
        record(result, row, 'p50', percentile(latencies, 50));
        record(result, row, 'p99', percentile(latencies, 99));
        record(result, row, 'req/s', latencies.length / costs.result.seconds);
        record(result, row, 'upstream', costs.upstreamRequests / latencies.length);
        // CPU in milliseconds per request.
        recordCosts(result, row, costs, path.members, latencies.length, 1000);
        log(
          `small run ${run + 1}/${plan.runs} ${row}: p50 ${percentile(latencies, 50).toFixed(2)} ms, ` +
            `p99 ${percentile(latencies, 99).toFixed(2)} ms, ` +
            `CPU ms/request ${path.members.map((m) => `${m.label} ${((1000 * costs.cpu[m.label]!) / latencies.length).toFixed(2)}`).join(', ') || '-'}` +
            `, sink ${((1000 * costs.cpu.sink!) / latencies.length).toFixed(2)} (load ${costs.load.toFixed(2)})`,
        );
      }
    }
  }
  return result;
}
