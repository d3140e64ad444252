import { mkdir, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { MiB } from '../bodies.js';
import { runClient, type Server } from '../children.js';
import type { JobResult } from '../jobs.js';
import type { Plan } from '../plan.js';
import type { BlobModeResults } from '../results.js';
import { FUNCTION_KEY, blobModeEnv, startAzurite, startBridge } from '../stack.js';
import { summarize } from '../stats.js';
import { rotated, uniqueId, type Log } from './common.js';

const GiB = 1024 * MiB;
const WARM_UP_BYTES = 32 * MiB;
const AZURITE_DIR = fileURLToPath(new URL('../../../.bench-tmp/azurite/', import.meta.url));

/**
 * Blob mode beside managed mode: one large file through a bridge writing managed attachments to the
 * sink and through a bridge writing blobs to Azurite (each part a block blob, then a metadata
 * attachment in the sink), and the blob-mode bridge's peak memory per upload size. Azurite keeps
 * what it is sent on disk, so the blob path includes a disk write the sink's discard mode spares.
 */
export async function measureBlobMode(
  plan: Plan,
  sink: Server,
  log: Log,
  bridgeNodeArgs: (label: string) => string[],
): Promise<BlobModeResults> {
  await rm(AZURITE_DIR, { recursive: true, force: true });
  await mkdir(AZURITE_DIR, { recursive: true });
  const azurite = await startAzurite(AZURITE_DIR);
  try {
    const managed = await startBridge(sink, bridgeNodeArgs('blob-managed'));
    const blob = await startBridge(sink, bridgeNodeArgs('blob-blob'), blobModeEnv(azurite));
    const paths = [
      { name: 'managed' as const, bridge: managed },
      { name: 'blob' as const, bridge: blob },
    ];
    const upload = (bridge: Server, bytes: number, label: string) =>
      runClient<JobResult>(
        {
          type: 'upload',
          target: { kind: 'bridge', origin: bridge.origin, functionKey: FUNCTION_KEY },
          bytes,
          id: uniqueId(label),
        },
        plan.jobTimeoutMs,
      );
    const samples = {
      managed: { rate: [] as number[], cpu: [] as number[] },
      blob: { rate: [] as number[], cpu: [] as number[] },
    };
    try {
      for (const path of paths) await upload(path.bridge, WARM_UP_BYTES, `blob-${path.name}`);
      for (let run = 0; run < plan.runs; run++) {
        for (const path of rotated(paths, run)) {
          const before = await path.bridge.cpuSeconds();
          const result = await upload(path.bridge, plan.throughputBytes, `blob-${path.name}`);
          const cpu = (await path.bridge.cpuSeconds()) - before;
          const rate = result.bytes / MiB / result.seconds;
          samples[path.name].rate.push(rate);
          samples[path.name].cpu.push(cpu / (result.bytes / GiB));
          log(`blob mode run ${run + 1}/${plan.runs} ${path.name}: ${rate.toFixed(0)} MiB/s`);
        }
      }
    } finally {
      await managed.stop();
      await blob.stop();
    }

    const peaks = new Map<number, number[]>(plan.memoryBytes.map((bytes) => [bytes, []]));
    for (let run = 0; run < plan.runs; run++) {
      for (const bytes of plan.memoryBytes) {
        const bridge = await startBridge(
          sink,
          bridgeNodeArgs(`blob-memory-${bytes / MiB}MiB`),
          blobModeEnv(azurite),
        );
        try {
          await upload(bridge, bytes, 'blob-mem');
          const peak = await bridge.peakRss();
          peaks.get(bytes)!.push(peak);
          log(
            `blob mode memory run ${run + 1}/${plan.runs} ${bytes / MiB} MiB: peak ${(peak / MiB).toFixed(1)} MiB`,
          );
        } finally {
          await bridge.stop();
        }
      }
    }
    return {
      fileBytes: plan.throughputBytes,
      managed: {
        mibPerSecond: summarize(samples.managed.rate),
        bridgeCpuPerGiB: summarize(samples.managed.cpu),
      },
      blob: { mibPerSecond: summarize(samples.blob.rate), bridgeCpuPerGiB: summarize(samples.blob.cpu) },
      memory: plan.memoryBytes.map((bytes) => ({ bytes, peakRss: summarize(peaks.get(bytes)!) })),
    };
  } finally {
    await azurite.stop();
    await rm(AZURITE_DIR, { recursive: true, force: true });
  }
}
