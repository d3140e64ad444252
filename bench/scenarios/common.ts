import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { cpuSecondsOf, peakRssOf, resetPeakRss, type Server } from '../children.js';
import type { Target } from '../jobs.js';
import { record, type ScenarioResult } from '../results.js';
import { FUNCTION_KEY, sinkStats, type Group, type Member } from '../stack.js';

export type Log = (line: string) => void;
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** Attachment ids are unique per document: every upload gets a fresh one. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}

/** The list starting at position `by` (wrapping), so the order of paths changes from run to run. */
export function rotated<T>(list: readonly T[], by: number): T[] {
  const start = by % list.length;
  return [...list.slice(start), ...list.slice(0, start)];
}

export function bridgeTarget(
  group: Group,
  form: 'multipart' | 'raw' = 'multipart',
): Target & { kind: 'bridge' } {
  return { kind: 'bridge', origin: group.origin, functionKey: FUNCTION_KEY, form };
}

/** What one measurement cost each process. */
export interface Costs<T> {
  result: T;
  /** CPU seconds, by member label, plus `sink`. */
  cpu: Record<string, number>;
  /** Peak RSS during the measurement (VmHWM reset before it), bytes, by member label. */
  peakRss: Record<string, number>;
  /** Requests the sink served meanwhile (Cosmos DB calls the bridge made). */
  upstreamRequests: number;
  /** 1-minute load average when it started. */
  load: number;
}

/** Runs `work` and reads what it cost the bridge's processes and the sink. */
export async function measure<T>(members: Member[], sink: Server, work: () => Promise<T>): Promise<Costs<T>> {
  for (const member of members) await resetPeakRss(member.pid);
  const load = loadavg()[0]!;
  const stats = await sinkStats(sink);
  const before = await cpuOf(members, sink);
  const result = await work();
  const after = await cpuOf(members, sink);
  const statsAfter = await sinkStats(sink);
  const peakRss: Record<string, number> = {};
  for (const member of members) peakRss[member.label] = await peakRssOf(member.pid);
  const cpu: Record<string, number> = {};
  for (const key of Object.keys(after)) cpu[key] = after[key]! - before[key]!;
  return { result, cpu, peakRss, upstreamRequests: statsAfter.requests - stats.requests, load };
}

async function cpuOf(members: Member[], sink: Server): Promise<Record<string, number>> {
  const cpu: Record<string, number> = { sink: await cpuSecondsOf(sink.pid) };
  for (const member of members) cpu[member.label] = await cpuSecondsOf(member.pid);
  return cpu;
}

/**
 * Records each process's CPU divided by `per` (GiB moved, or requests), the bridge's total when it
 * has more than one process, and each peak RSS in MiB.
 */
export function recordCosts(
  result: ScenarioResult,
  path: string,
  costs: Costs<unknown>,
  members: Member[],
  per: number,
  scale = 1,
): void {
  let bridge = 0;
  for (const member of members) {
    const value = costs.cpu[member.label]! / per;
    bridge += value;
    record(result, path, `cpu:${member.label}`, value * scale);
    record(result, path, `rss:${member.label}`, costs.peakRss[member.label]! / MiB);
  }
  if (members.length > 0) record(result, path, 'cpu:bridge', bridge * scale);
  record(result, path, 'cpu:sink', (costs.cpu.sink! / per) * scale);
  result.load.push(costs.load);
}

/** Where a scenario's requests go, and the processes that pay for them. */
export interface Path {
  /** The row name in the report. */
  name: string;
  target: Target;
  members: Member[];
}

/** Straight to the sink, as any Cosmos DB client would: the reference every bridge is compared with. */
export function directPath(sink: Server): Path {
  return { name: 'direct', target: { kind: 'sink', origin: sink.origin }, members: [] };
}

export type BridgeKind = 'adapter' | 'functions';

/** Paths through each build's bridges (the node:http adapter, then the local Functions host). */
export function bridgePaths<P extends Path>(
  bridges: Bridges[],
  make: (bridge: { build: string; kind: BridgeKind; group: Group }) => P[],
): P[] {
  return bridges.flatMap(({ build, adapter, functions }) => [
    ...make({ build, kind: 'adapter', group: adapter }),
    ...make({ build, kind: 'functions', group: functions }),
  ]);
}

/**
 * Every path once per run, a different one first each run, so that a busy patch on the machine does
 * not hit one path only; `afterRun` measures what belongs beside each run.
 */
export async function inTurns<P>(
  runs: number,
  paths: readonly P[],
  measureOne: (path: P, run: number) => Promise<void>,
  afterRun?: (run: number) => Promise<void> | void,
): Promise<void> {
  for (let run = 0; run < runs; run++) {
    for (const path of rotated(paths, run)) await measureOne(path, run);
    await afterRun?.(run);
  }
}

/** One build's bridges: the node:http adapter and the local Functions host. */
export interface Bridges {
  /** '' for the checkout being measured; the --compare name for another build. */
  build: string;
  adapter: Group;
  functions: Group;
}

/** A row name: as it is for this checkout, prefixed with the build's name for another. */
export function rowName(build: string, path: string): string {
  return build ? `${build}: ${path}` : path;
}
