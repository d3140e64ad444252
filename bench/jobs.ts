// What the orchestrator asks the load-generator process to do, and what it answers (JSON over argv/stdout).

/** What a long-running client prints on stderr once its load is in place. */
export const CLIENT_READY = 'client ready';

/**
 * Where requests go: a bridge (function key; files as multipart or as raw media with a Slug; its
 * answer is checked), or a sink origin taking raw media as Cosmos DB does (directly or through the
 * TCP pass-through).
 */
export type Target =
  | { kind: 'bridge'; origin: string; functionKey: string; form: 'multipart' | 'raw' }
  | { kind: 'sink'; origin: string };

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

/** JSON metadata creates: the smallest create there is. */
export interface SmallRequestsJob {
  type: 'small-requests';
  target: Target;
  concurrency: number;
  requests: number;
  idPrefix: string;
}

/** Small files, one after another on one connection. */
export interface SmallUploadsJob {
  type: 'small-uploads';
  target: Target;
  bytes: number;
  requests: number;
  idPrefix: string;
}

/**
 * `count` uploads that send their headers and part head, then one byte a second, each replaced by a
 * new one when the bridge answers it (408), until the client is stopped (SIGTERM) or `maxSeconds`.
 */
export interface TrickleJob {
  type: 'trickle';
  target: Target & { kind: 'bridge' };
  count: number;
  maxSeconds: number;
  idPrefix: string;
}

export type Job = UploadJob | ConcurrentUploadsJob | SmallRequestsJob | SmallUploadsJob | TrickleJob;

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

export interface TrickleResult {
  started: number;
  /** Answers the tricklers got, by status (408 expected). */
  answers: Record<string, number>;
}
