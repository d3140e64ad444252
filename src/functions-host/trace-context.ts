// W3C trace context for an invocation. The host starts an Activity per request (continuing the
// caller's `traceparent` when there is a valid one) and passes it to the worker as the invocation's
// RpcTraceContext (traceParent, traceState, attributes).
import { randomString } from '../random.js';
import type { RpcTraceContext } from './protocol.js';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

export function invocationTraceContext(traceparent?: string, tracestate?: string): RpcTraceContext {
  const parent = traceparent ? TRACEPARENT.exec(traceparent.trim()) : null;
  const valid = parent && parent[1] !== 'ff' && !/^0+$/.test(parent[2]!) && !/^0+$/.test(parent[3]!);
  const traceId = valid ? parent[2]! : randomString(16, 'hex');
  const flags = valid ? parent[4]! : '00';
  return {
    traceParent: `00-${traceId}-${randomString(8, 'hex')}-${flags}`,
    traceState: valid ? (tracestate ?? '') : '',
    attributes: {},
  };
}
