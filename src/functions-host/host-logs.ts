// What the host logs: its own events and every log the worker sends (user logs from context.log and
// friends, system logs from the worker and `@azure/functions`), each with level, category and, for
// invocations, the invocation id. Printed one JSON object per line and kept for tests.

export type LogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical';

export interface HostLogRecord {
  time: string;
  level: LogLevel;
  /** The host's logger category, e.g. `Host.Startup`, `Function.upload`, `Function.upload.User`. */
  category: string;
  message: string;
  /** `host` for the host's own logs, `worker` for logs the worker sent or printed. */
  source: 'host' | 'worker';
  invocationId?: string;
  functionName?: string;
  [field: string]: unknown;
}

const RANK: Record<LogLevel, number> = {
  trace: 0,
  debug: 1,
  information: 2,
  warning: 3,
  error: 4,
  critical: 5,
};

export interface HostLogOptions {
  /** Print each record at `information` or above as a JSON line (stdout; warnings and errors on stderr). */
  print: boolean;
  onLog?: (record: HostLogRecord) => void;
  /** How many records to keep in memory at least (the oldest dropped first, up to twice as many kept). */
  keep?: number;
}

export class HostLogs {
  readonly records: HostLogRecord[] = [];
  readonly #keep: number;

  constructor(private readonly options: HostLogOptions) {
    this.#keep = options.keep ?? 20_000;
  }

  write(record: Omit<HostLogRecord, 'time'>): void {
    const full = { time: new Date().toISOString(), ...record } as HostLogRecord;
    this.records.push(full);
    // Trimmed in batches: dropping the oldest one on every write moves the whole array each time (7 %
    // of the host's CPU per small request once full, in the benchmark's profile).
    if (this.records.length >= 2 * this.#keep) this.records.splice(0, this.records.length - this.#keep);
    if (this.options.print && RANK[full.level] >= RANK.information) {
      const line = JSON.stringify(full);
      if (RANK[full.level] >= RANK.warning) process.stderr.write(`${line}\n`);
      else process.stdout.write(`${line}\n`);
    }
    this.options.onLog?.(full);
  }

  host(level: LogLevel, category: string, message: string, fields: Record<string, unknown> = {}): void {
    this.write({ level, category, message, source: 'host', ...fields });
  }
}

export function toLogLevel(level: string): LogLevel {
  return level in RANK ? (level as LogLevel) : 'information';
}
