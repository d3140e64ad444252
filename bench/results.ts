import type { Summary } from './stats.js';

/** One large upload, per path: what the client saw and what each process spent. */
export interface ThroughputFigures {
  mibPerSecond: Summary;
  /** CPU seconds per GiB moved, of the process between client and sink (none for direct). */
  middleCpuPerGiB: Summary | undefined;
  sinkCpuPerGiB: Summary;
  clientCpuPerGiB: Summary;
}

export interface ThroughputResults {
  fileBytes: number;
  bridge: ThroughputFigures;
  direct: ThroughputFigures;
  proxy: ThroughputFigures;
}

export interface MemoryResults {
  /** Peak RSS of a fresh bridge before any request. */
  idle: Summary;
  bridge: { bytes: number; peakRss: Summary }[];
  naive: { bytes: number; peakRss: Summary }[];
}

/** The bridge with managed attachments (into the sink) and with MEDIA_STORE=blob (into Azurite). */
export interface BlobModeResults {
  fileBytes: number;
  managed: { mibPerSecond: Summary; bridgeCpuPerGiB: Summary };
  blob: { mibPerSecond: Summary; bridgeCpuPerGiB: Summary };
  /** Peak RSS of a fresh blob-mode bridge per upload. */
  memory: { bytes: number; peakRss: Summary }[];
}

export interface LatencyFigures {
  p50Ms: Summary;
  p99Ms: Summary;
}

export interface ConcurrencyResults {
  bytes: number;
  concurrency: number;
  perWorker: number;
  bridge: LatencyFigures & { mibPerSecond: Summary };
  direct: LatencyFigures & { mibPerSecond: Summary };
}

export interface SmallRequestLevel {
  concurrency: number;
  requests: number;
  bridge: LatencyFigures & { requestsPerSecond: Summary };
  direct: LatencyFigures & { requestsPerSecond: Summary };
}

export interface SmallRequestResults {
  /** One client after another first (latency), then many at once (rate). */
  levels: SmallRequestLevel[];
  /** Connections the bridge opened to the sink during the whole scenario (warm-up included). */
  upstreamConnectionsOpened: number;
  upstreamRequests: number;
  poolSize: number;
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
  /** Node flags the bridge ran with (none in a published run). */
  bridgeNodeArgs: string[];
  throughput?: ThroughputResults;
  memory?: MemoryResults;
  concurrency?: ConcurrencyResults;
  small?: SmallRequestResults;
  blob?: BlobModeResults;
}
