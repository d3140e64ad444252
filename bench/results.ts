/**
 * Raw figures of a run: per scenario, one row per path (or path and level), each metric a list with
 * one value per run. Medians and spreads are taken when the report is written.
 */
export interface Row {
  /** e.g. "functions multipart", "direct". */
  path: string;
  metrics: Record<string, number[]>;
}

export interface ScenarioResult {
  rows: Row[];
  /** 1-minute load average at the start of each measurement of the scenario. */
  load: number[];
  /** What else the report needs to say about it (sizes, counts). */
  notes: Record<string, number | string>;
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd: number[];
}

export interface Results {
  startedAt: string;
  command: string;
  runs: number;
  machine: Machine;
  /** Git commit of the measured code, with "+changes" when the tree was dirty. */
  revision: string;
  nodeArgs: { adapter: string[]; host: string[]; worker: string[] };
  /** Settings given with --env (none in a published run). */
  bridgeEnv: Record<string, string>;
  /** Other builds measured beside this one (--compare). */
  compare: { name: string; dir: string }[];
  scenarios: Partial<Record<string, ScenarioResult>>;
  /** Text summaries of the profile scenario, by process. */
  profiles?: Record<string, string>;
}

/** Adds one value to a row's metric, creating the row and the metric as needed. */
export function record(result: ScenarioResult, path: string, metric: string, value: number): void {
  let row = result.rows.find((r) => r.path === path);
  if (!row) {
    row = { path, metrics: {} };
    result.rows.push(row);
  }
  (row.metrics[metric] ??= []).push(value);
}

export function emptyScenario(notes: Record<string, number | string> = {}): ScenarioResult {
  return { rows: [], load: [], notes };
}
