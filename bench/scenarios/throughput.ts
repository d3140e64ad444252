import { MiB } from '../bodies.js';
import { runClient, type Server } from '../children.js';
import type { JobResult, Target, UploadJob } from '../jobs.js';
import type { Plan } from '../plan.js';
import type { ThroughputFigures, ThroughputResults } from '../results.js';
import { FUNCTION_KEY } from '../stack.js';
import { summarize } from '../stats.js';
import { rotated, uniqueId, type Log } from './common.js';

const GiB = 1024 * MiB;
const WARM_UP_BYTES = 32 * MiB;

interface Path {
  name: 'bridge' | 'direct' | 'proxy';
  target: Target;
  middle: Server | undefined;
}

interface Sample {
  mibPerSecond: number;
  middleCpuPerGiB: number | undefined;
  sinkCpuPerGiB: number;
  clientCpuPerGiB: number;
}

/** One file through the bridge (multipart), straight to the sink (raw media) and through the TCP pass-through. */
export async function measureThroughput(
  plan: Plan,
  servers: { sink: Server; bridge: Server; proxy: Server },
  log: Log,
): Promise<ThroughputResults> {
  const { sink, bridge, proxy } = servers;
  const paths: Path[] = [
    {
      name: 'bridge',
      target: { kind: 'bridge', origin: bridge.origin, functionKey: FUNCTION_KEY },
      middle: bridge,
    },
    { name: 'direct', target: { kind: 'sink', origin: sink.origin }, middle: undefined },
    { name: 'proxy', target: { kind: 'sink', origin: proxy.origin }, middle: proxy },
  ];
  const upload = (path: Path, bytes: number): UploadJob => ({
    type: 'upload',
    target: path.target,
    bytes,
    id: uniqueId(`tp-${path.name}`),
  });

  for (const path of paths) await runClient<JobResult>(upload(path, WARM_UP_BYTES), plan.jobTimeoutMs);

  const samples = new Map<Path['name'], Sample[]>(paths.map((path) => [path.name, []]));
  for (let run = 0; run < plan.runs; run++) {
    // A different path goes first each run, so a slow patch on the machine does not hit one path only.
    for (const path of rotated(paths, run)) {
      const before = await cpuOf(sink, path.middle);
      const result = await runClient<JobResult>(upload(path, plan.throughputBytes), plan.jobTimeoutMs);
      const after = await cpuOf(sink, path.middle);
      const gib = result.bytes / GiB;
      const sample: Sample = {
        mibPerSecond: result.bytes / MiB / result.seconds,
        middleCpuPerGiB: path.middle ? (after.middle - before.middle) / gib : undefined,
        sinkCpuPerGiB: (after.sink - before.sink) / gib,
        clientCpuPerGiB: result.clientCpuSeconds / gib,
      };
      samples.get(path.name)!.push(sample);
      log(`throughput run ${run + 1}/${plan.runs} ${path.name}: ${sample.mibPerSecond.toFixed(0)} MiB/s`);
    }
  }

  const figures = (name: Path['name']): ThroughputFigures => {
    const list = samples.get(name)!;
    const middle = list.map((s) => s.middleCpuPerGiB).filter((v): v is number => v !== undefined);
    return {
      mibPerSecond: summarize(list.map((s) => s.mibPerSecond)),
      middleCpuPerGiB: middle.length > 0 ? summarize(middle) : undefined,
      sinkCpuPerGiB: summarize(list.map((s) => s.sinkCpuPerGiB)),
      clientCpuPerGiB: summarize(list.map((s) => s.clientCpuPerGiB)),
    };
  };
  return {
    fileBytes: plan.throughputBytes,
    bridge: figures('bridge'),
    direct: figures('direct'),
    proxy: figures('proxy'),
  };
}

async function cpuOf(sink: Server, middle: Server | undefined): Promise<{ sink: number; middle: number }> {
  return { sink: await sink.cpuSeconds(), middle: middle ? await middle.cpuSeconds() : 0 };
}
