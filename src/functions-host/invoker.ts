// Runs one invocation of a non-HTTP function through the worker, with the host's
// "Executing"/"Executed" logs; used by the queue and timer listeners and the admin API.
import type { ParameterBinding, RpcTypedData } from './protocol.js';

export interface InvocationResult {
  succeeded: boolean;
  invocationId: string;
  /** The function's error, when it failed. */
  error?: string;
}

export type Invoke = (call: {
  functionName: string;
  /** Why the host runs it, as in the host's "Executing ... (Reason='...')" log. */
  reason: string;
  inputData: ParameterBinding[];
  triggerMetadata: Record<string, RpcTypedData>;
}) => Promise<InvocationResult>;
