import { RECOMMENDED_NODE_OPTIONS } from '../src/runtime.js';
import { MiB } from './bodies.js';

export const SCENARIOS = ['throughput', 'memory', 'concurrency', 'small', 'blob'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** What one `npm run bench` measures; every loop below is bounded by these counts. */
export interface Plan {
  runs: number;
  scenarios: Scenario[];
  /** Run the bridge under `--cpu-prof` (profiles in .bench-tmp/profiles). */
  cpuProf: boolean;
  /** Full runs publish BENCHMARKS.md and the chart; quick runs write beside the raw results. */
  publish: boolean;
  throughputBytes: number;
  memoryBytes: number[];
  /** Sizes for the naive handler: ones it survives (it holds about four times the body). */
  naiveBytes: number[];
  /** Node flags for the bridge process: by default those `npm start` and the deployment use. */
  bridgeNodeArgs: string[];
  concurrency: { bytes: number; concurrency: number; perWorker: number };
  /** Small-request levels: concurrency 1 measures the hop's latency; more measures the rate. */
  small: { concurrency: number; requests: number }[];
  /** Upper bound for one client job, so nothing can hang the benchmark. */
  jobTimeoutMs: number;
}

const USAGE = `npm run bench [-- options]
  --quick            2 runs per figure, results under .bench-tmp/ only (BENCHMARKS.md untouched)
  --runs N           runs per figure (default 5)
  --only a,b         scenarios among ${SCENARIOS.join(', ')}
  --cpu-prof         run the bridge with --cpu-prof; profiles and a summary under .bench-tmp/profiles
  --bridge-node-args "FLAGS"  node flags for the bridge process instead of the recommended "${RECOMMENDED_NODE_OPTIONS.join(' ')}" ("" for none; implies --no-publish)
  --no-publish       leave BENCHMARKS.md and docs/benchmarks.svg untouched`;

export function parsePlan(argv: string[]): Plan {
  const plan: Plan = {
    runs: 5,
    scenarios: [...SCENARIOS],
    cpuProf: false,
    publish: true,
    throughputBytes: 256 * MiB,
    memoryBytes: [16 * MiB, 256 * MiB, 1024 * MiB],
    naiveBytes: [256 * MiB, 1024 * MiB],
    bridgeNodeArgs: [...RECOMMENDED_NODE_OPTIONS],
    concurrency: { bytes: 4 * MiB, concurrency: 64, perWorker: 2 },
    small: [
      { concurrency: 1, requests: 1000 },
      { concurrency: 16, requests: 2000 },
    ],
    jobTimeoutMs: 300_000,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') {
      plan.runs = 2;
      plan.publish = false;
    } else if (arg === '--runs') {
      plan.runs = Number(argv[++i]);
      if (!Number.isInteger(plan.runs) || plan.runs < 1 || plan.runs > 50)
        throw new Error(`--runs: 1..50\n${USAGE}`);
    } else if (arg === '--only') {
      const names = (argv[++i] ?? '').split(',');
      const unknown = names.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
      if (unknown.length > 0) throw new Error(`--only: unknown ${unknown.join(', ')}\n${USAGE}`);
      plan.scenarios = names as Scenario[];
    } else if (arg === '--cpu-prof') {
      plan.cpuProf = true;
    } else if (arg === '--bridge-node-args') {
      plan.bridgeNodeArgs = (argv[++i] ?? '').split(' ').filter(Boolean);
      plan.publish = false;
    } else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (arg === '--no-publish') {
      plan.publish = false;
    } else {
      throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  return plan;
}
