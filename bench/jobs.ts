// What the orchestrator asks the load-generator process to do, and what it answers (JSON over argv/stdout).

/**
 * Where requests go: the bridge's route (multipart, function key; its answer is checked), the naive
 * `formData()` handler (same requests), or a sink origin taking raw media (directly or through the TCP proxy).
 */
export type Target =
  { kind: 'bridge' | 'naive'; origin: string; functionKey: string } | { kind: 'sink'; origin: string };

export interface UploadJob {
  type: 'upload';
  target: Target;
  /** File size in bytes. */
  bytes: number;
  /** Attachment id (unique per document). */
  id: string;
}

export interface ConcurrentUploadsJob {
  type: 'concurrent-uploads';
  target: Target;
  bytes: number;
  /** Uploads in flight at once (and connections in the client's pool). */
  concurrency: number;
  /** Uploads each of the `concurrency` workers makes, one after another. */
  perWorker: number;
  idPrefix: string;
}

export interface SmallRequestsJob {
  type: 'small-requests';
  target: Target;
  concurrency: number;
  requests: number;
  idPrefix: string;
}

export type Job = UploadJob | ConcurrentUploadsJob | SmallRequestsJob;

export interface JobResult {
  /** Wall time of the measured part, in seconds. */
  seconds: number;
  /** File bytes moved (not counting multipart framing); 0 for small requests. */
  bytes: number;
  /** One entry per request, in milliseconds. */
  latenciesMs: number[];
  /** CPU the client process used during the measured part, in seconds. */
  clientCpuSeconds: number;
}
