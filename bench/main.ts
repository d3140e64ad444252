// `npm run bench`: the sink, the bridge, a TCP pass-through and a naive formData() handler as separate
// processes, a load generator process per measurement, all on 127.0.0.1. Prints medians with min and
// max, saves the raw figures under .bench-tmp/, and publishes BENCHMARKS.md with its chart.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killAllNow, stopAll, type Server } from './children.js';
import { describeMachine, loadAverage, revision } from './machine.js';
import { parsePlan, type Plan } from './plan.js';
import { summarizeProfiles } from './profile-summary.js';
import { renderChart } from './report/chart.js';
import { consoleSummary, publishMarkdown } from './report/markdown.js';
import type { Results } from './results.js';
import { measureBlobMode } from './scenarios/blob.js';
import { measureConcurrency } from './scenarios/concurrency.js';
import { measureMemory } from './scenarios/memory.js';
import { measureSmallRequests } from './scenarios/small-requests.js';
import { measureThroughput } from './scenarios/throughput.js';
import { startBridge, startProxy, startSink } from './stack.js';
import { checkTargets } from './targets.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORK_DIR = join(ROOT, '.bench-tmp');

async function main(): Promise<void> {
  if (process.argv[2] === 'download')
    return (await import('./scenarios/download.js')).main(process.argv.slice(3));
  const plan = parsePlan(process.argv.slice(2));
  const started = performance.now();
  const log = (line: string) =>
    console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const profileDir = join(WORK_DIR, 'profiles', stamp);
  let profiles = 0;
  const bridgeArgs = (label: string) => [
    ...plan.bridgeNodeArgs,
    ...(plan.cpuProf
      ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${label}-${++profiles}.cpuprofile`]
      : []),
  ];

  const results: Results = {
    startedAt: new Date().toISOString(),
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(
      ' ',
    ),
    runs: plan.runs,
    machine: { ...describeMachine(), loadAverageAtEnd: [] },
    revision: revision(),
    bridgeNodeArgs: plan.bridgeNodeArgs,
  };
  log(`${plan.runs} runs per figure; scenarios: ${plan.scenarios.join(', ')}; ${results.revision}`);
  await rm(join(WORK_DIR, 'logs'), { recursive: true, force: true });

  const sink = await startSink();
  try {
    await runScenarios(plan, sink, results, log, bridgeArgs);
  } finally {
    await stopAll();
  }
  results.machine.loadAverageAtEnd = loadAverage();

  await mkdir(WORK_DIR, { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  await writeFile(join(WORK_DIR, `results-${stamp}.json`), json);
  await writeFile(join(WORK_DIR, 'results.json'), json);
  const checks = checkTargets(results);
  console.log(`\n${consoleSummary(results, checks)}`);

  const markdownPath = plan.publish ? join(ROOT, 'BENCHMARKS.md') : join(WORK_DIR, 'BENCHMARKS.md');
  const chartPath = plan.publish ? join(ROOT, 'docs', 'benchmarks.svg') : join(WORK_DIR, 'benchmarks.svg');
  await writeFile(chartPath, renderChart(results));
  await publishMarkdown(
    markdownPath,
    results,
    checks,
    plan.publish ? 'docs/benchmarks.svg' : 'benchmarks.svg',
  );
  log(`wrote ${markdownPath}, ${chartPath} and .bench-tmp/results-${stamp}.json`);

  if (plan.cpuProf) {
    const summary = await summarizeProfiles(profileDir);
    await writeFile(join(profileDir, 'summary.txt'), `${summary}\n`);
    console.log(`\nbridge CPU profile (${profileDir}):\n${summary}`);
  }
}

async function runScenarios(
  plan: Plan,
  sink: Server,
  results: Results,
  log: (line: string) => void,
  bridgeArgs: (label: string) => string[],
): Promise<void> {
  // A fresh bridge per scenario: its connection counts and profile belong to that scenario alone.
  for (const scenario of plan.scenarios) {
    if (scenario === 'memory') {
      results.memory = await measureMemory(plan, sink, log, bridgeArgs);
      continue;
    }
    if (scenario === 'blob') {
      results.blob = await measureBlobMode(plan, sink, log, bridgeArgs);
      continue;
    }
    const bridge = await startBridge(sink, bridgeArgs(scenario));
    try {
      if (scenario === 'throughput') {
        const proxy = await startProxy(sink);
        try {
          results.throughput = await measureThroughput(plan, { sink, bridge, proxy }, log);
        } finally {
          await proxy.stop();
        }
      } else if (scenario === 'concurrency') {
        results.concurrency = await measureConcurrency(plan, { sink, bridge }, log);
      } else {
        results.small = await measureSmallRequests(plan, { sink, bridge }, log);
      }
    } finally {
      await bridge.stop();
    }
  }
}

process.once('SIGINT', () => {
  void stopAll().finally(() => process.exit(130));
});
process.once('SIGTERM', () => {
  void stopAll().finally(() => process.exit(143));
});
process.on('exit', killAllNow);

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
