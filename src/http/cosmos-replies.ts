import { RETRYABLE_STATUSES, type CallOptions, type CosmosReply } from '../cosmos/client.js';
import { parsePartitionKeyHeader } from '../cosmos/partition-key.js';
import { BridgeError, UpstreamStatusError } from './errors.js';

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
      ...(reply.body === ''
        ? {}
        : {
            'content-type': reply.headers['content-type'] ?? 'application/json',
            'content-length': String(Buffer.byteLength(reply.body)),
          }),
    },
  });
}

/**
 * An error status from Cosmos DB as a caller error, keeping Cosmos's code and message. Two kinds are
 * the bridge's own business rather than the caller's and are translated: a refused key (401/403) is a
 * 502, or a 503 "retry" when the client has just switched to the other key; and throttling that
 * retries could not absorb (429, 449, 503) is a 503 with Retry-After.
 */
export function upstreamError(reply: CosmosReply, subject?: string): UpstreamStatusError | BridgeError {
  const headers = passedBackHeaders(reply);
  if (reply.status === 401 || reply.status === 403) {
    if (reply.keySwitched) {
      return new BridgeError(
        'UpstreamUnavailable',
        'The bridge switched Cosmos DB account keys; send the request again.',
        {
          ...headers,
          'retry-after': '1',
        },
      );
    }
    return new BridgeError(
      'UpstreamAuthFailed',
      "Cosmos DB refused the bridge's credentials; check the account key settings.",
      headers,
    );
  }
  const { code, message } = cosmosError(reply);
  const text = subject ? `${subject}: ${message}` : message;
  // Cosmos DB timing out is the upstream's slowness: a 408 would tell mobile HTTP stacks the caller was too slow.
  if (reply.status === 408)
    return new BridgeError('UpstreamTimeout', `Cosmos DB timed out. ${text}`, headers);
  if (RETRYABLE_STATUSES.has(reply.status)) {
    const retryAfterMs = Number(reply.headers['x-ms-retry-after-ms']);
    const seconds = Number.isFinite(retryAfterMs) && retryAfterMs > 0 ? Math.ceil(retryAfterMs / 1000) : 1;
    return new BridgeError(
      'UpstreamUnavailable',
      `Cosmos DB is busy (${reply.status} ${code}); retry later. ${text}`,
      {
        ...headers,
        'retry-after': String(seconds),
      },
    );
  }
  return new UpstreamStatusError(reply.status, code, text, headers);
}

function cosmosError(reply: CosmosReply): { code: string; message: string } {
  let code = `Http${reply.status}`;
  let message = `Cosmos DB answered ${reply.status}.`;
  try {
    const parsed = JSON.parse(reply.body) as { code?: unknown; message?: unknown };
    if (typeof parsed.code === 'string') code = parsed.code;
    if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // Not JSON: keep the generic text rather than echoing an unknown body.
  }
  return { code, message };
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
