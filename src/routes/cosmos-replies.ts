import type { CallOptions, CosmosReply } from '../cosmos/client.js';
import { parsePartitionKeyHeader } from '../cosmos/partition-key.js';
import { BridgeError, UpstreamStatusError } from '../http/errors.js';

/** Response headers of Cosmos DB that callers need: RU charge, session, tracing, concurrency. */
export const PASSED_BACK_HEADERS = [
  'etag',
  'x-ms-request-charge',
  'x-ms-session-token',
  'x-ms-activity-id',
  'x-ms-retry-after-ms',
  'x-ms-resource-quota',
  'x-ms-resource-usage',
  'x-ms-max-media-storage-usage-mb',
  'x-ms-media-storage-usage-mb',
] as const;

export function passedBackHeaders(reply: CosmosReply): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of PASSED_BACK_HEADERS) {
    const value = reply.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  return headers;
}

/** Cosmos DB's answer as it gave it: status, resource (or error) body and the headers callers need. */
export function replyAsResponse(reply: CosmosReply): Response {
  if (reply.status >= 400) throw upstreamError(reply);
  return new Response(reply.body === '' ? null : reply.body, {
    status: reply.status,
    headers: {
      ...passedBackHeaders(reply),
      ...(reply.body === '' ? {} : { 'content-type': reply.headers['content-type'] ?? 'application/json' }),
    },
  });
}

/**
 * An error status from Cosmos DB as a caller error, keeping Cosmos's code and message. A refused
 * signature (401/403) is the bridge's own configuration, not the caller's doing: that is a 502.
 */
export function upstreamError(reply: CosmosReply, subject?: string): UpstreamStatusError | BridgeError {
  if (reply.status === 401 || reply.status === 403) {
    return new BridgeError(
      'UpstreamAuthFailed',
      "Cosmos DB refused the bridge's credentials; check the account key setting.",
      passedBackHeaders(reply),
    );
  }
  let code = `Http${reply.status}`;
  let message = `Cosmos DB answered ${reply.status}.`;
  try {
    const parsed = JSON.parse(reply.body) as { code?: unknown; message?: unknown };
    if (typeof parsed.code === 'string') code = parsed.code;
    if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // Not JSON: keep the generic text rather than echoing an unknown body.
  }
  const headers = passedBackHeaders(reply);
  const retryAfterMs = Number(reply.headers['x-ms-retry-after-ms']);
  if (Number.isFinite(retryAfterMs) && retryAfterMs >= 0) {
    headers['retry-after'] = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  }
  return new UpstreamStatusError(reply.status, code, subject ? `${subject}: ${message}` : message, headers);
}

/**
 * Partition key and session token a caller may send, validated before they reach a header upstream.
 * No abort signal: a caller leaving mid-body fails the body stream, which aborts the upload; once a
 * body is complete, the create is let finish so its outcome is known and can be rolled back.
 */
export function callOptionsFrom(request: Request): CallOptions {
  const partitionKeyHeader = request.headers.get('x-ms-documentdb-partitionkey');
  const sessionToken = request.headers.get('x-ms-session-token') ?? undefined;
  if (sessionToken !== undefined && !/^[\x21-\x7e]{1,16384}$/.test(sessionToken)) {
    throw new BridgeError('InvalidHeader', 'The x-ms-session-token header is malformed.');
  }
  return {
    partitionKey:
      partitionKeyHeader === null
        ? undefined
        : parsePartitionKeyHeader(partitionKeyHeader, 'the x-ms-documentdb-partitionkey header'),
    sessionToken,
  };
}
