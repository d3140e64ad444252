import { MiB } from '../bodies.js';
import { runClient, type Server } from '../children.js';
import type { JobResult } from '../jobs.js';
import type { Plan } from '../plan.js';
import type { MemoryResults } from '../results.js';
import { FUNCTION_KEY, startBridge, startNaive } from '../stack.js';
import { summarize } from '../stats.js';
import { uniqueId, type Log } from './common.js';

/**
 * Peak RSS (VmHWM) of a fresh process per upload, so each peak belongs to the size measured: the
 * bridge at each size, and the naive `formData()` handler at a size it survives.
 */
export async function measureMemory(
  plan: Plan,
  sink: Server,
  log: Log,
  bridgeNodeArgs: (label: string) => string[],
): Promise<MemoryResults> {
  const idle: number[] = [];
  const peaks = new Map<number, number[]>(plan.memoryBytes.map((bytes) => [bytes, []]));
  const naive = new Map<number, number[]>(plan.naiveBytes.map((bytes) => [bytes, []]));

  const peakOfOneUpload = async (server: Server, kind: 'bridge' | 'naive', bytes: number) => {
    try {
      await runClient<JobResult>(
        {
          type: 'upload',
          target: { kind, origin: server.origin, functionKey: FUNCTION_KEY },
          bytes,
          id: uniqueId(`mem-${kind}`),
        },
        plan.jobTimeoutMs,
      );
      return await server.peakRss();
    } finally {
      await server.stop();
    }
  };

  for (let run = 0; run < plan.runs; run++) {
    for (const bytes of plan.memoryBytes) {
      const bridge = await startBridge(sink, bridgeNodeArgs(`memory-${bytes / MiB}MiB`));
      idle.push(await bridge.peakRss());
      const peak = await peakOfOneUpload(bridge, 'bridge', bytes);
      peaks.get(bytes)!.push(peak);
      log(
        `memory run ${run + 1}/${plan.runs} bridge ${bytes / MiB} MiB: peak ${(peak / MiB).toFixed(1)} MiB`,
      );
    }
    for (const bytes of plan.naiveBytes) {
      const peak = await peakOfOneUpload(await startNaive(sink), 'naive', bytes);
      naive.get(bytes)!.push(peak);
      log(`memory run ${run + 1}/${plan.runs} naive ${bytes / MiB} MiB: peak ${(peak / MiB).toFixed(1)} MiB`);
    }
  }

  return {
    idle: summarize(idle),
    bridge: plan.memoryBytes.map((bytes) => ({ bytes, peakRss: summarize(peaks.get(bytes)!) })),
    naive: plan.naiveBytes.map((bytes) => ({ bytes, peakRss: summarize(naive.get(bytes)!) })),
  };
}
