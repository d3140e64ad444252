import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type { Logger } from '../log.js';

/** Where this project's patch of the library (patches/) exposes the web Request an HttpRequest wraps. */
const NATIVE_REQUEST = Symbol.for('cosmos-attachment-bridge.nativeRequest');

/**
 * A web-standard Request for what the Functions library handed over. With `enableHttpStream` the
 * body is the caller's live stream, read as the core reads it, never buffered here. The signal says
 * the caller left; the library exposes it through this project's patch (patches/, library issue 294).
 * The patched library also exposes the Request it built, which is used as it is rather than copied
 * into another (headers copied, a signal followed: work on every request).
 */
export function toRequest(request: HttpRequest): Request {
  const native = (request as HttpRequest & { [NATIVE_REQUEST]?: unknown })[NATIVE_REQUEST];
  if (native instanceof Request) return native;
  const hasBody = request.method !== 'GET' && request.method !== 'HEAD' && request.body !== null;
  const { signal } = request as HttpRequest & { signal?: AbortSignal };
  return new Request(request.url, {
    method: request.method,
    headers: request.headers,
    body: hasBody ? (request.body as ReadableStream<Uint8Array>) : null,
    duplex: 'half',
    ...(signal ? { signal } : {}),
  });
}

/** The core's Response as the library takes it: status, headers, and the body as a stream. */
export function toResponseInit(response: Response): HttpResponseInit {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  return { status: response.status, headers, body: response.body ?? undefined };
}

/**
 * The app's log lines through the invocation context, so Application Insights ties them to the
 * invocation: one JSON object per line, with the invocation id and the W3C trace parent.
 */
export function invocationLogger(context: InvocationContext): Logger {
  const base = {
    invocationId: context.invocationId,
    ...(context.traceContext?.traceParent ? { traceparent: context.traceContext.traceParent } : {}),
  };
  const line = (message: string, fields?: Record<string, unknown>) =>
    JSON.stringify({ message, ...base, ...fields });
  return {
    info: (message, fields) => context.info(line(message, fields)),
    warn: (message, fields) => context.warn(line(message, fields)),
    error: (message, fields) => context.error(line(message, fields)),
  };
}
