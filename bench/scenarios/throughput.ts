import { execFileSync } from 'node:child_process';
import { ENTRY, runClient, type Server } from '../children.js';
import type { JobResult, UploadJob } from '../jobs.js';
import type { Plan } from '../plan.js';
import { emptyScenario, record, type ScenarioResult } from '../results.js';
import { FUNCTION_KEY, type Group } from '../stack.js';
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
  type Path,
} from './common.js';

const WARM_UP_BYTES = 32 * MiB;

/**
 * One large file per path and run, the paths taking turns: straight to the sink, through the TCP
 * pass-through, and through each bridge as multipart and as raw media. Beside them, in each run, the
 * floor's other parts (SHA-256 and one delimiter search over the same bytes, in a process of their own).
 */
export async function measureThroughput(
  plan: Plan,
  servers: { sink: Server; proxy: Server; uploadFloor: Server; functionsFloor: Group; bridges: Bridges[] },
  log: Log,
): Promise<ScenarioResult> {
  const { sink, proxy, uploadFloor, functionsFloor, bridges } = servers;
  const paths: Path[] = [
    directPath(sink),
    {
      name: 'pass-through',
      target: { kind: 'sink', origin: proxy.origin },
      members: [{ label: 'proxy', pid: proxy.pid }],
    },
    {
      name: 'upload floor',
      target: { kind: 'bridge', origin: uploadFloor.origin, functionKey: FUNCTION_KEY, form: 'multipart' },
      members: [{ label: 'upload-floor', pid: uploadFloor.pid }],
    },
    {
      name: 'functions upload floor',
      target: bridgeTarget(functionsFloor, 'multipart'),
      members: functionsFloor.members,
    },
    // Other builds (before-and-after figures) as multipart only.
    ...bridgePaths(bridges, ({ build, kind, group }) =>
      (build ? (['multipart'] as const) : (['multipart', 'raw'] as const)).map((form) => ({
        name: rowName(build, `${kind} ${form}`),
        target: bridgeTarget(group, form),
        members: group.members,
      })),
    ),
  ];
  const result = emptyScenario({ bytes: plan.throughputBytes });
  const job = (path: Path, bytes: number): UploadJob => ({
    type: 'upload',
    target: path.target,
    bytes,
    id: uniqueId(`tp-${path.name.replace(/\W+/g, '-')}`),
  });

  for (const path of paths) await runClient<JobResult>(job(path, WARM_UP_BYTES), plan.jobTimeoutMs);

  await inTurns(
    plan.runs,
    paths,
    async (path, run) => {
      const costs = await measure(path.members, sink, () =>
        runClient<JobResult>(job(path, plan.throughputBytes), plan.jobTimeoutMs),
      );
      const gib = costs.result.bytes / GiB;
      const mibPerSecond = costs.result.bytes / MiB / costs.result.seconds;
      record(result, path.name, 'MiB/s', mibPerSecond);
      record(result, path.name, 'cpu:client', costs.result.clientCpuSeconds / gib);
      record(result, path.name, 'upstream', costs.upstreamRequests);
      recordCosts(result, path.name, costs, path.members, gib);
      log(
        `throughput run ${run + 1}/${plan.runs} ${path.name}: ${mibPerSecond.toFixed(0)} MiB/s, ` +
          `CPU s/GiB ${path.members.map((m) => `${m.label} ${(costs.cpu[m.label]! / gib).toFixed(2)}`).join(', ') || '-'}` +
          `, sink ${(costs.cpu.sink! / gib).toFixed(2)} (load ${costs.load.toFixed(2)})`,
      );
    },
    (run) => {
      const floor = JSON.parse(
        execFileSync(process.execPath, [ENTRY.floor, String(plan.throughputBytes)], { encoding: 'utf8' }),
      ) as { sha256PerGiB: number; scanPerGiB: number };
      record(result, 'floor', 'sha256', floor.sha256PerGiB);
      record(result, 'floor', 'scan', floor.scanPerGiB);
      log(
        `throughput run ${run + 1}/${plan.runs} floor parts: SHA-256 ${floor.sha256PerGiB.toFixed(2)}, ` +
          `delimiter search ${floor.scanPerGiB.toFixed(2)} CPU s/GiB`,
      );
    },
  );
  return result;
}
