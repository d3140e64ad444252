// `npm run bench`: the sink, the TCP pass-through and the bridge as it runs, as separate processes
// (the node:http adapter, one process; the local Functions host, a host and a worker process running
// @azure/functions), a load generator process per measurement, all on 127.0.0.1. Prints medians with
// min and max, saves the raw figures under .bench-tmp/, and publishes BENCHMARKS.md.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { killAllNow, stopAll, type Server } from './children.js';
import { describeMachine, loadAverage, revision } from './machine.js';
import { assertPatched } from './patches.js';
import { parsePlan, type Plan } from './plan.js';
import { consoleSummary, publishMarkdown } from './report/markdown.js';
import type { Results } from './results.js';
import { measureConcurrency } from './scenarios/concurrency.js';
import { profileBridges } from './scenarios/profile.js';
import { measureSmall } from './scenarios/small.js';
import { measureThroughput } from './scenarios/throughput.js';
import { measureTricklers } from './scenarios/tricklers.js';
import type { Bridges } from './scenarios/common.js';
import {
  prepareBuild,
  setBridgeEnv,
  startAdapter,
  startFunctions,
  startProxy,
  startFloor,
  startFunctionsFloor,
  startSink,
  startStorage,
  type Build,
  type Group,
} from './stack.js';
import { checkTargets } from './targets.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORK_DIR = join(ROOT, '.bench-tmp');

async function main(): Promise<void> {
  if (process.argv[2] === 'download')
    return (await import('./scenarios/download.js')).main(process.argv.slice(3));
  const plan = parsePlan(process.argv.slice(2));
  setBridgeEnv(plan.bridgeEnv);
  const started = performance.now();
  const log = (line: string) =>
    console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const results: Results = {
    startedAt: new Date().toISOString(),
    command: ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(
      ' ',
    ),
    runs: plan.runs,
    machine: { ...describeMachine(), loadAverageAtEnd: [] },
    revision: revision(),
    nodeArgs: plan.nodeArgs,
    bridgeEnv: plan.bridgeEnv,
    compare: plan.compare,
    scenarios: {},
  };
  log(
    `${plan.runs} runs per figure; scenarios: ${plan.scenarios.join(', ')}; ${results.revision}; ` +
      `load average ${results.machine.loadAverageAtStart.join(', ')}`,
  );
  await rm(join(WORK_DIR, 'logs'), { recursive: true, force: true });

  await assertPatched(ROOT);
  for (const { name, dir } of plan.compare) await assertPatched(resolve(ROOT, dir), name);
  const sink = await startSink();
  const storage = await startStorage();
  try {
    await runScenarios(plan, { sink, storage: storage.connectionString }, results, log, stamp);
  } finally {
    await stopAll();
  }
  results.machine.loadAverageAtEnd = loadAverage();

  await mkdir(WORK_DIR, { recursive: true });
  const json = `${JSON.stringify(results, null, 2)}\n`;
  await writeFile(join(WORK_DIR, `results-${stamp}.json`), json);
  await writeFile(join(WORK_DIR, 'results.json'), json);
  // The targets are judged on this checkout's rows; other builds' rows carry their name (`name: path`).
  const checks = checkTargets(results);
  console.log(`\n${consoleSummary(checks)}`);
  const markdownPath = plan.publish ? join(ROOT, 'BENCHMARKS.md') : join(WORK_DIR, 'BENCHMARKS.md');
  // An unpublished report starts afresh each time.
  if (!plan.publish) await rm(markdownPath, { force: true });
  await publishMarkdown(markdownPath, results, checks);
  log(`wrote ${markdownPath} and .bench-tmp/results-${stamp}.json`);
}

async function runScenarios(
  plan: Plan,
  services: { sink: Server; storage: string },
  results: Results,
  log: (line: string) => void,
  stamp: string,
): Promise<void> {
  const { sink, storage } = services;
  for (const scenario of plan.scenarios) {
    if (scenario === 'profile') {
      const dir = join(WORK_DIR, 'profiles', stamp);
      const builds: Build[] = [
        ...plan.compare.map(({ name, dir: buildDir }) => ({ name, dir: resolve(ROOT, buildDir) })),
        { name: '', dir: undefined },
      ];
      results.profiles = await profileBridges(plan, services, dir, log, builds);
      for (const [label, summary] of Object.entries(results.profiles)) console.log(`\n${label}:\n${summary}`);
      continue;
    }
    // Fresh bridges per scenario: their memory, connections and compiled code belong to it alone.
    const groups: Group[] = [];
    try {
      const bridges: Bridges[] = [];
      const builds: Build[] = [
        { name: '', dir: undefined },
        // Other builds take turns in throughput and small only: under 64 concurrent uploads old main's
        // Functions path once left an upload unanswered for the client's 300 s (see BENCHMARKS.md).
        ...(scenario === 'tricklers' || scenario === 'concurrency'
          ? []
          : plan.compare.map(({ name, dir }) => ({ name, dir: resolve(ROOT, dir) }))),
      ];
      for (const build of builds) {
        await prepareBuild(build);
        const label = build.name ? `${build.name}-` : '';
        const adapter = await startAdapter(sink, storage, plan.nodeArgs.adapter, `${label}adapter`, build);
        groups.push(adapter);
        const functions = await startFunctions(sink, storage, plan.nodeArgs, [], `${label}functions`, build);
        groups.push(functions);
        bridges.push({ build: build.name, adapter, functions });
      }
      if (scenario === 'throughput') {
        const proxy = await startProxy(sink);
        const uploadFloor = await startFloor('upload', sink, plan.nodeArgs.adapter);
        const functionsFloor = await startFunctionsFloor(sink, storage, plan.nodeArgs);
        try {
          results.scenarios.throughput = await measureThroughput(
            plan,
            { sink, proxy, uploadFloor, functionsFloor, bridges },
            log,
          );
        } finally {
          await functionsFloor.stop();
          await uploadFloor.stop();
          await proxy.stop();
        }
      } else if (scenario === 'small') {
        const floor = await startFloor('small', sink, plan.nodeArgs.adapter);
        const functionsFloor = await startFunctionsFloor(sink, storage, plan.nodeArgs);
        try {
          results.scenarios.small = await measureSmall(plan, { sink, floor, functionsFloor, bridges }, log);
        } finally {
          await functionsFloor.stop();
          await floor.stop();
        }
      } else if (scenario === 'concurrency') {
        const functionsFloor = await startFunctionsFloor(sink, storage, plan.nodeArgs);
        try {
          results.scenarios.concurrency = await measureConcurrency(
            plan,
            { sink, functionsFloor, bridges },
            log,
          );
        } finally {
          await functionsFloor.stop();
        }
      } else {
        const { adapter, functions } = bridges[0]!;
        results.scenarios.tricklers = await measureTricklers(
          plan,
          { sink, bridges: [functions, adapter] },
          log,
        );
      }
    } finally {
      for (const group of groups) await group.stop();
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
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
