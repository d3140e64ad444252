// Messages between the host and its worker process. They carry what the Functions host and the Node
// worker exchange over gRPC (azure-functions-language-worker-protobuf), in the string forms the
// worker's core API hands to `@azure/functions` (levels 'information', directions 'in', ...).

export type RpcLogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none';
export type RpcLogCategory = 'user' | 'system' | 'customMetric';

/** The protobuf TypedData: exactly one of these is set. */
export interface RpcTypedData {
  string?: string;
  json?: string;
  bytes?: Uint8Array;
  stream?: Uint8Array;
  http?: Record<string, unknown>;
  int?: number;
  double?: number;
  collectionBytes?: { bytes: Uint8Array[] };
  collectionString?: { string: string[] };
  collectionDouble?: { double: number[] };
  collectionSint64?: { sint64: number[] };
}

export interface RpcBindingInfo {
  type?: string;
  direction?: 'in' | 'out' | 'inout';
  dataType?: string;
  [property: string]: unknown;
}

/** What `@azure/functions` registers for a function (its `toCoreFunctionMetadata`). */
export interface FunctionMetadata {
  name: string;
  functionId?: string;
  bindings: Record<string, RpcBindingInfo>;
  retryOptions?: Record<string, unknown>;
  /** Set by the worker, as the real worker's registerFunction does. */
  rawBindings?: string[];
  scriptFile?: string;
  directory?: string;
}

export interface RpcTraceContext {
  traceParent: string;
  traceState: string;
  attributes: Record<string, string>;
}

export interface RpcRetryContext {
  retryCount: number;
  maxRetryCount: number;
  exception?: RpcException;
}

export interface RpcException {
  message?: string;
  stackTrace?: string;
  source?: string;
}

export interface ParameterBinding {
  name: string;
  data: RpcTypedData;
}

export interface InvocationRequest {
  invocationId: string;
  functionId: string;
  inputData: ParameterBinding[];
  triggerMetadata: Record<string, RpcTypedData>;
  traceContext: RpcTraceContext;
  retryContext?: RpcRetryContext;
}

export interface InvocationResponse {
  invocationId: string;
  outputData?: { name: string; data: RpcTypedData | null | undefined }[];
  returnValue?: RpcTypedData | null;
  result: { status: 'success' | 'failure'; exception?: RpcException };
}

export interface RpcLog {
  level: RpcLogLevel;
  logCategory: RpcLogCategory;
  message: string;
  /** `<function name>.Invocation` for invocation logs, as the real worker sets it. */
  category?: string;
  invocationId?: string;
}

export type HostToWorker =
  | { type: 'init'; appDir: string; hostVersion: string }
  | { type: 'invoke'; request: InvocationRequest }
  | { type: 'terminate'; gracePeriodMs: number };

export type WorkerToHost =
  | { type: 'log'; log: RpcLog }
  | {
      type: 'ready';
      functions: FunctionMetadata[];
      capabilities: Record<string, string>;
      /** The entry point failed to load (the worker then reports no functions). */
      loadError?: string;
    }
  | { type: 'invocationResponse'; response: InvocationResponse }
  | { type: 'terminated' };
