import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runClient, type Server } from '../children.js';
import type { JobResult } from '../jobs.js';
import type { Plan } from '../plan.js';
import { summarizeCpuProfiles, summarizePerf } from '../profile-summary.js';
import { prepareBuild, startAdapter, startFunctions, type Build, type Group } from '../stack.js';
import { bridgeTarget, MiB, uniqueId, type Log } from './common.js';

/**
 * JSON creates one after another in the small-request profile, in two batches (the profile covers the
 * process's whole life; the second batch's rate is logged, the first having warmed up).
 */
const PROFILED_SMALL_REQUESTS = 5000;

/**
 * Where the CPU goes: a fresh node:http adapter and a fresh local Functions host, each taking one
 * large multipart upload alone, under `--cpu-prof` (each process's main thread; startup and a warm-up
 * upload included) and, in a second pass with fresh processes where `perf` is installed, under `perf
 * record` (every thread and the kernel, the measured upload only); then, in fresh processes again,
 * small JSON creates one after another under `--cpu-prof`. Profiles stay under `dir`.
 */
export async function profileBridges(
  plan: Plan,
  servers: { sink: Server; storage: string },
  root: string,
  log: Log,
  builds: Build[],
): Promise<Record<string, string>> {
  const summaries: Record<string, string> = {};
  for (const build of builds) {
    const dir = join(root, build.name || 'this');
    Object.assign(summaries, await profileBuild(plan, servers, dir, log, build));
  }
  return summaries;
}

async function profileBuild(
  plan: Plan,
  servers: { sink: Server; storage: string },
  dir: string,
  log: Log,
  build: Build,
): Promise<Record<string, string>> {
  const smallDir = join(dir, 'small');
  await mkdir(smallDir, { recursive: true });
  const cpuProf = (into: string) => (name: string) => [
    '--cpu-prof',
    '--cpu-prof-dir',
    into,
    '--cpu-prof-name',
    `${name}.cpuprofile`,
  ];
  // Passes with fresh processes: V8's sampling profiler costs CPU that perf would count, and a profile
  // covers its process's whole life.
  await profilePass(plan, servers, 'cpu-prof', cpuProf(dir));
  const hasPerf = spawnSync('perf', ['--version']).status === 0;
  if (hasPerf) {
    await profilePass(plan, servers, 'perf', () => ['--perf-basic-prof-only-functions'], dir);
  } else {
    log('profile: perf is not installed; --cpu-prof only');
  }
  await profilePass(plan, servers, 'small', cpuProf(smallDir));
  const summaries: Record<string, string> = {};
  for (const label of ['adapter', 'host', 'worker']) {
    const parts = [await summarizeCpuProfiles(dir, label)];
    if (hasPerf) parts.push(await summarizePerf(join(dir, `perf-${label}.data`)));
    summaries[build.name ? `${build.name}: ${label}` : label] = parts.join('\n\n');
  }
  for (const label of ['adapter', 'host', 'worker']) {
    const name = `${label}, small JSON creates`;
    summaries[build.name ? `${build.name}: ${name}` : name] = await summarizeCpuProfiles(smallDir, label);
  }
  return summaries;

  async function profilePass(
    plan: Plan,
    servers: { sink: Server; storage: string },
    pass: 'cpu-prof' | 'perf' | 'small',
    flags: (name: string) => string[],
    perfDir?: string,
  ): Promise<void> {
    await prepareBuild(build);
    const name = build.name || 'this';
    const adapter = await startAdapter(
      servers.sink,
      servers.storage,
      [...plan.nodeArgs.adapter, ...flags('adapter')],
      `${name}-profile-adapter`,
      build,
    );
    const functions = await startFunctions(
      servers.sink,
      servers.storage,
      { host: [...plan.nodeArgs.host, ...flags('host')], worker: plan.nodeArgs.worker },
      flags('worker'),
      `${name}-profile-functions`,
      build,
    );
    const groups: Group[] = [adapter, functions];
    const recorders: ChildProcess[] = [];
    try {
      const upload = (group: Group, bytes: number) =>
        runClient<JobResult>(
          { type: 'upload', target: bridgeTarget(group), bytes, id: uniqueId('profile') },
          plan.jobTimeoutMs,
        );
      if (pass === 'small') {
        for (const group of groups) {
          const creates = (requests: number) =>
            runClient<JobResult>(
              {
                type: 'small-requests',
                target: bridgeTarget(group),
                concurrency: 1,
                requests,
                idPrefix: uniqueId('profile'),
              },
              plan.jobTimeoutMs,
            );
          await creates(PROFILED_SMALL_REQUESTS);
          const result = await creates(PROFILED_SMALL_REQUESTS);
          log(
            `profile (small) ${build.name || 'this checkout'}: ${group.name}, ` +
              `${(PROFILED_SMALL_REQUESTS / result.seconds).toFixed(0)} JSON creates/s`,
          );
        }
        return;
      }
      for (const group of groups) await upload(group, 32 * MiB);
      if (perfDir) {
        for (const group of groups) {
          for (const member of group.members) {
            const file = join(perfDir, `perf-${member.label}.data`);
            const args = [
              'record',
              '-e',
              'cpu-clock',
              '-F',
              '499',
              '-g',
              '-o',
              file,
              '-p',
              String(member.pid),
            ];
            recorders.push(spawn('perf', args, { stdio: 'ignore' }));
          }
        }
        // perf needs a moment to attach.
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      for (const group of groups) {
        const result = await upload(group, plan.profileBytes);
        log(
          `profile (${pass}) ${build.name || 'this checkout'}: ${group.name}, ${(result.bytes / MiB / result.seconds).toFixed(0)} MiB/s`,
        );
      }
    } finally {
      for (const recorder of recorders) {
        recorder.kill('SIGINT');
        await once(recorder, 'exit');
      }
      // The profiles are written as the processes exit.
      for (const group of groups) await group.stop();
    }
  }
}
