import type { Results, Row, ScenarioResult } from './results.js';
import { summarize } from './stats.js';

/** One target of issue 12, judged on the medians of one run of the benchmark. */
export interface TargetCheck {
  target: string;
  /** The measured figure, as written in the report. */
  measured: string;
  met: boolean;
}

export function metric(scenario: ScenarioResult | undefined, path: string, name: string): number[] {
  return scenario?.rows.find((row: Row) => row.path === path)?.metrics[name] ?? [];
}

export function median(values: number[]): number {
  return values.length === 0 ? NaN : summarize(values).median;
}

/** Per run a ÷ b (the two were measured in the same run), then the median. */
export function pairedRatio(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  return median(Array.from({ length: n }, (_, i) => a[i]! / b[i]!));
}

/** Per run a − b, then the median. */
export function pairedDifference(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  return median(Array.from({ length: n }, (_, i) => a[i]! - b[i]!));
}

/** Per run: what the bridge must spend per byte at least (pass-through + SHA-256 + one delimiter search). */
export function floorRuns(throughput: ScenarioResult | undefined): number[] {
  const proxy = metric(throughput, 'pass-through', 'cpu:proxy');
  const sha = metric(throughput, 'floor', 'sha256');
  const scan = metric(throughput, 'floor', 'scan');
  const n = Math.min(proxy.length, sha.length, scan.length);
  return Array.from({ length: n }, (_, i) => proxy[i]! + sha[i]! + scan[i]!);
}

const x = (value: number) => `${value.toFixed(2)}x`;

export function checkTargets(results: Results): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const { throughput, small, concurrency, tricklers } = results.scenarios;
  if (throughput) {
    const floor = floorRuns(throughput);
    const adapter = metric(throughput, 'adapter multipart', 'cpu:bridge');
    const functions = metric(throughput, 'functions multipart', 'cpu:bridge');
    const worker = metric(throughput, 'functions multipart', 'cpu:worker');
    // The least a node:http + undici bridge spends per byte (bench/upload-floor.ts), beside the floor.
    const uploadFloor = metric(throughput, 'upload floor', 'cpu:bridge');
    const againstUploadFloor = (runs: number[]) =>
      uploadFloor.length > 0 ? `; ${x(pairedRatio(runs, uploadFloor))} the upload floor` : '';
    // The same as a Functions app in the local Functions host (bench/functions-floor.ts).
    const functionsFloor = (member: string) => metric(throughput, 'functions upload floor', `cpu:${member}`);
    const againstFunctionsFloor = (runs: number[], member: string) =>
      functionsFloor(member).length > 0
        ? `; ${x(pairedRatio(runs, functionsFloor(member)))} the Functions upload floor${member === 'worker' ? "'s worker" : ''}`
        : '';
    const adapterToFloor = pairedRatio(adapter, floor);
    checks.push({
      target: 'Multipart, CPU s/GiB of the bridge ≤ 1.15x the floor (node:http adapter)',
      measured:
        `${x(adapterToFloor)} (${median(adapter).toFixed(2)} against ${median(floor).toFixed(2)}` +
        `${againstUploadFloor(adapter)})`,
      met: adapterToFloor <= 1.15,
    });
    const workerToFloor = pairedRatio(worker, floor);
    checks.push({
      target:
        'Multipart, CPU s/GiB ≤ 1.15x the floor (Functions worker, the process Azure bills for the app)',
      measured:
        `${x(workerToFloor)} (${median(worker).toFixed(2)}${againstUploadFloor(worker)}` +
        `${againstFunctionsFloor(worker, 'worker')})`,
      met: workerToFloor <= 1.15,
    });
    const groupToFloor = pairedRatio(functions, floor);
    checks.push({
      target: 'Multipart, CPU s/GiB ≤ 1.15x the floor (host and worker together)',
      measured: `${x(groupToFloor)} (${median(functions).toFixed(2)}${againstFunctionsFloor(functions, 'bridge')})`,
      met: groupToFloor <= 1.15,
    });
    const toAdapter = pairedRatio(functions, adapter);
    checks.push({
      target: 'The path Azure runs (host + worker) ≤ 1.2x the node:http adapter, CPU s/GiB',
      measured: `${x(toAdapter)} (worker alone ${x(pairedRatio(worker, adapter))})`,
      met: toAdapter <= 1.2,
    });
    const passThrough = metric(throughput, 'pass-through', 'MiB/s');
    for (const [name, path] of [
      ['node:http adapter', 'adapter multipart'],
      ['local Functions host', 'functions multipart'],
    ] as const) {
      const ratio = pairedRatio(metric(throughput, path, 'MiB/s'), passThrough);
      const floorRate =
        path === 'functions multipart' ? metric(throughput, 'functions upload floor', 'MiB/s') : [];
      checks.push({
        target: `Throughput of one upload ≥ 0.55x the pass-through (${name}, multipart)`,
        measured:
          x(ratio) +
          (floorRate.length > 0
            ? ` (the Functions upload floor ${x(pairedRatio(floorRate, passThrough))})`
            : ''),
        met: ratio >= 0.55,
      });
    }
  }
  if (small) {
    for (const [name, path] of [
      ['local Functions host', 'functions'],
      ['node:http adapter', 'adapter'],
    ] as const) {
      const cpuRuns = metric(small, `json x1 ${path}`, 'cpu:bridge');
      const floorCpu = metric(small, 'json x1 floor', 'cpu:bridge');
      // On the Functions path each figure also has the least a Functions app does there
      // (bench/functions-floor.ts), when it was measured.
      const functionsFloor = (level: string, name: string): number[] =>
        path === 'functions' ? metric(small, `json ${level} functions floor`, name) : [];
      const functionsFloorCpu = functionsFloor('x1', 'cpu:bridge');
      const cpu = median(cpuRuns);
      checks.push({
        target: `Small JSON create: bridge CPU ≤ 0.5 ms per request (${name})`,
        measured:
          `${cpu.toFixed(2)} ms` +
          (floorCpu.length > 0
            ? ` (the floor ${median(floorCpu).toFixed(2)} ms; ${x(pairedRatio(cpuRuns, floorCpu))} it)`
            : '') +
          (functionsFloorCpu.length > 0
            ? ` (the Functions floor ${median(functionsFloorCpu).toFixed(2)} ms; ${x(pairedRatio(cpuRuns, functionsFloorCpu))} it)`
            : ''),
        met: cpu <= 0.5,
      });
      const directP50 = metric(small, 'json x1 direct', 'p50');
      const p50 = pairedDifference(metric(small, `json x1 ${path}`, 'p50'), directP50);
      const floorP50 = functionsFloor('x1', 'p50');
      checks.push({
        target: `Small JSON create: p50 ≤ direct + 0.5 ms, one client (${name})`,
        measured:
          `+${p50.toFixed(2)} ms` +
          (floorP50.length > 0
            ? ` (the Functions floor +${pairedDifference(floorP50, directP50).toFixed(2)} ms)`
            : ''),
        met: p50 <= 0.5,
      });
      const level = small.rows.find(
        (row) => /^json x(\d+) direct$/.test(row.path) && !row.path.startsWith('json x1 '),
      );
      if (level) {
        const clients = /x(\d+)/.exec(level.path)![1];
        const directP99 = metric(small, `json x${clients} direct`, 'p99');
        const p99 = pairedRatio(metric(small, `json x${clients} ${path}`, 'p99'), directP99);
        const floorP99 = functionsFloor(`x${clients}`, 'p99');
        checks.push({
          target: `Small JSON create: p99 with ${clients} clients ≤ 1.5x direct (${name})`,
          measured:
            x(p99) +
            (floorP99.length > 0 ? ` (the Functions floor ${x(pairedRatio(floorP99, directP99))})` : ''),
          met: p99 <= 1.5,
        });
      }
    }
  }
  if (concurrency) {
    const { concurrency: clients, bytes } = concurrency.notes;
    const label = `${clients} x ${Number(bytes) / 1024 / 1024} MiB uploads`;
    for (const [name, path, members] of [
      ['local Functions host', 'functions', ['worker', 'host']],
      ['node:http adapter', 'adapter', ['adapter']],
    ] as const) {
      // On the Functions path, each figure also has the least Functions app's, when it was measured.
      const floor = path === 'functions' && metric(concurrency, 'functions floor', 'p99').length > 0;
      const directP99 = metric(concurrency, 'direct', 'p99');
      const p99 = pairedRatio(metric(concurrency, path, 'p99'), directP99);
      checks.push({
        target: `${label}: p99 ≤ 2x direct (${name})`,
        measured:
          x(p99) +
          (floor
            ? ` (the Functions floor ${x(pairedRatio(metric(concurrency, 'functions floor', 'p99'), directP99))})`
            : ''),
        met: p99 <= 2,
      });
      for (const member of members) {
        const rss = median(metric(concurrency, path, `rss:${member}`));
        const floorRss = floor
          ? ` (the Functions floor ${median(metric(concurrency, 'functions floor', `rss:${member}`)).toFixed(0)} MiB)`
          : '';
        checks.push({
          target: `${label}: peak RSS ≤ 128 MiB (${member === 'host' ? 'the local host process, not deployed' : member})`,
          measured: `${rss.toFixed(0)} MiB${floorRss}`,
          met: rss <= 128,
        });
      }
    }
  }
  if (tricklers) {
    for (const bridge of ['functions', 'adapter']) {
      const withThem = metric(tricklers, `${bridge} with`, 'p99');
      if (withThem.length === 0) continue;
      const moved = pairedDifference(withThem, metric(tricklers, `${bridge} without`, 'p99'));
      checks.push({
        target: `${tricklers.notes.count} tricklers move another caller's small-upload p99 by ≤ 5 ms (${bridge === 'functions' ? 'local Functions host' : 'node:http adapter'})`,
        measured: `${moved >= 0 ? '+' : ''}${moved.toFixed(2)} ms`,
        met: moved <= 5,
      });
    }
  }
  return checks;
}
