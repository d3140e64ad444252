import { RECOMMENDED_NODE_OPTIONS } from '../src/runtime.js';
import { MiB } from './bodies.js';

export const SCENARIOS = ['throughput', 'small', 'concurrency', 'tricklers', 'profile'] as const;
export type Scenario = (typeof SCENARIOS)[number];
/** What a plain `npm run bench` measures; `profile` perturbs CPU figures, so it runs only when asked. */
export const DEFAULT_SCENARIOS: Scenario[] = ['throughput', 'small', 'concurrency', 'tricklers'];

/** What one `npm run bench` measures; every loop below is bounded by these counts. */
export interface Plan {
  runs: number;
  scenarios: Scenario[];
  /** Full runs publish BENCHMARKS.md; quick or modified runs write beside the raw results. */
  publish: boolean;
  /** One large upload per path and run. */
  throughputBytes: number;
  concurrency: { bytes: number; concurrency: number; perWorker: number };
  /** Small requests: one client after another (latency, CPU per request), then many at once (p99). */
  small: { concurrency: number; requests: number }[];
  /** Small file uploads per run (one client), for CPU per request including the ownership mark. */
  smallFiles: { bytes: number; requests: number };
  /** `seconds` bounds the tricklers' life; they are stopped as soon as the measurement ends. */
  tricklers: { count: number; seconds: number; uploads: number; uploadBytes: number };
  /** The `profile` scenario: bytes through each bridge under --cpu-prof and perf. */
  profileBytes: number;
  /** Node flags of the bridge processes: the node:http adapter, the host and the worker. */
  nodeArgs: { adapter: string[]; host: string[]; worker: string[] };
  /** Settings for both bridges beyond the benchmark's own (`--env NAME=value`). */
  bridgeEnv: Record<string, string>;
  /**
   * Other builds of the bridge (a checkout with node_modules and dist/) measured beside this one in
   * the same run, for before-and-after figures (`--compare name=dir,...`).
   */
  compare: { name: string; dir: string }[];
  /** Upper bound for one client job, so nothing can hang the benchmark. */
  jobTimeoutMs: number;
}

const USAGE = `npm run bench [-- options]
  --quick               2 runs per figure, smaller uploads; results under .bench-tmp/ only
  --runs N              runs per figure (default 5)
  --only a,b            scenarios among ${SCENARIOS.join(', ')} (default: all but profile)
  --throughput-mib N    size of the single upload (default 1024)
  --worker-node-args "FLAGS"   node flags of the Functions worker (default "${RECOMMENDED_NODE_OPTIONS.join(' ')}")
  --adapter-node-args "FLAGS"  node flags of the node:http adapter process (same default)
  --host-node-args "FLAGS"     node flags of the local Functions host process (same default)
  --env NAME=value      a setting for both bridges (repeatable), e.g. --env REPLAY_BUFFER_BYTES=0
  --compare a=DIR,b=DIR other builds (checkouts with node_modules and dist/) measured beside this one,
                        interleaved in throughput and small, and profiled in profile; their figures go
                        to a section of their own
  --no-publish          leave BENCHMARKS.md untouched
Any *-node-args or --env option implies --no-publish.`;

export function parsePlan(argv: string[]): Plan {
  const plan: Plan = {
    runs: 5,
    scenarios: [...DEFAULT_SCENARIOS],
    publish: true,
    throughputBytes: 1024 * MiB,
    concurrency: { bytes: 8 * MiB, concurrency: 64, perWorker: 2 },
    small: [
      { concurrency: 1, requests: 1000 },
      { concurrency: 16, requests: 2000 },
    ],
    smallFiles: { bytes: 4096, requests: 300 },
    tricklers: { count: 64, seconds: 120, uploads: 300, uploadBytes: 4096 },
    profileBytes: 1024 * MiB,
    nodeArgs: {
      adapter: [...RECOMMENDED_NODE_OPTIONS],
      host: [...RECOMMENDED_NODE_OPTIONS],
      worker: [...RECOMMENDED_NODE_OPTIONS],
    },
    bridgeEnv: {},
    compare: [],
    jobTimeoutMs: 300_000,
  };
  const flags = (value: string | undefined) => (value ?? '').split(' ').filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') {
      plan.runs = 2;
      plan.publish = false;
      plan.throughputBytes = 256 * MiB;
      plan.small = [
        { concurrency: 1, requests: 300 },
        { concurrency: 16, requests: 600 },
      ];
      plan.smallFiles.requests = 100;
      plan.tricklers = { ...plan.tricklers, uploads: 100 };
      plan.profileBytes = 256 * MiB;
    } else if (arg === '--runs') {
      plan.runs = Number(argv[++i]);
      if (!Number.isInteger(plan.runs) || plan.runs < 1 || plan.runs > 50)
        throw new Error(`--runs: 1..50\n${USAGE}`);
    } else if (arg === '--only') {
      const names = (argv[++i] ?? '').split(',');
      const unknown = names.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
      if (unknown.length > 0) throw new Error(`--only: unknown ${unknown.join(', ')}\n${USAGE}`);
      plan.scenarios = names as Scenario[];
    } else if (arg === '--throughput-mib') {
      const mib = Number(argv[++i]);
      if (!Number.isInteger(mib) || mib < 16 || mib > 4096) throw new Error(`--throughput-mib: 16..4096`);
      plan.throughputBytes = mib * MiB;
      plan.profileBytes = mib * MiB;
    } else if (arg === '--worker-node-args') {
      plan.nodeArgs.worker = flags(argv[++i]);
      plan.publish = false;
    } else if (arg === '--adapter-node-args') {
      plan.nodeArgs.adapter = flags(argv[++i]);
      plan.publish = false;
    } else if (arg === '--host-node-args') {
      plan.nodeArgs.host = flags(argv[++i]);
      plan.publish = false;
    } else if (arg === '--env') {
      const setting = argv[++i] ?? '';
      const at = setting.indexOf('=');
      if (at < 1) throw new Error(`--env: NAME=value\n${USAGE}`);
      plan.bridgeEnv[setting.slice(0, at)] = setting.slice(at + 1);
      plan.publish = false;
    } else if (arg === '--compare') {
      for (const item of (argv[++i] ?? '').split(',').filter(Boolean)) {
        const at = item.indexOf('=');
        if (at < 1) throw new Error(`--compare: name=dir,...\n${USAGE}`);
        plan.compare.push({ name: item.slice(0, at), dir: item.slice(at + 1) });
      }
    } else if (arg === '--no-publish') {
      plan.publish = false;
    } else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      throw new Error(`unknown option ${arg}\n${USAGE}`);
    }
  }
  return plan;
}
