// Forwards a caller's request to the worker's HTTP proxy and its response back, as the host does
// with YARP (DefaultHttpProxyService, ActivityTimeout 240 s): hop-by-hop headers dropped, Host
// replaced, X-Forwarded-For/-Proto/-Host set, `x-ms-invocation-id` added; bodies streamed both ways
// with backpressure. Kestrel's request body limit (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT) is enforced on
// the bytes read: past it the proxied request is aborted. The outcome is reported, not answered: the
// host decides what the caller sees once the invocation is done too.
import type { Agent, IncomingMessage, ServerResponse } from 'node:http';
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';

/** YARP's ForwarderError values this forwarder reports. */
export type ForwardError =
  | 'RequestTimedOut'
  | 'RequestCanceled'
  | 'RequestBodyClient'
  | 'RequestBodyCanceled'
  | 'Request'
  | 'ResponseBodyDestination'
  | 'ResponseBodyClient'
  | 'ResponseBodyCanceled';

export interface ForwardOutcome {
  error?: ForwardError;
  detail?: string;
}

export interface ForwardTarget {
  agent: Agent;
  /** The address to connect to (the worker's `localhost`, resolved once). */
  host: string;
  port: number;
  /** The Host header for the worker, e.g. `localhost:55001`. */
  hostHeader: string;
}

export interface ForwardOptions {
  invocationId: string;
  activityTimeoutMs: number;
  bodyLimit: number;
  /** Headers the host's middleware adds to every answer (CORS), applied over the worker's. */
  extraResponseHeaders: [string, string][];
  /** Sees each answer as it goes to the caller: its head, then its body chunks (tests scan them). */
  observe?: ResponseObserver | undefined;
}

export interface ResponseObserver {
  head(status: number, headers: Record<string, string | string[] | undefined>): void;
  chunk(bytes: Buffer): void;
}

export interface Forwarding {
  readonly outcome: Promise<ForwardOutcome>;
}

/** Request headers a proxy must not forward (RFC 9110 7.6.1), plus Host, which YARP replaces. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
]);
const FORWARDED = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-forwarded-prefix']);

export function forward(
  req: IncomingMessage,
  res: ServerResponse,
  target: ForwardTarget,
  options: ForwardOptions,
): Forwarding {
  let settled = false;
  let responseStarted = false;
  let settle!: (outcome: ForwardOutcome) => void;
  const outcome = new Promise<ForwardOutcome>((resolve) => {
    settle = (value) => {
      if (settled) return;
      settled = true;
      clearTimeout(activity);
      resolve(value);
    };
  });

  const proxyReq = httpRequest({
    agent: target.agent,
    host: target.host,
    port: target.port,
    method: req.method,
    path: req.url,
    headers: forwardedHeaders(req, target, options.invocationId),
  });

  const fail = (error: ForwardError, detail: string) => {
    if (settled) return;
    settle({ error, detail });
    proxyReq.destroy();
    // Whatever the caller still sends is read and dropped, so it can read the answer.
    req.resume();
  };
  const activity = setTimeout(
    () =>
      fail(
        responseStarted ? 'ResponseBodyCanceled' : 'RequestTimedOut',
        `no activity for ${options.activityTimeoutMs} ms`,
      ),
    options.activityTimeoutMs,
  );

  // The caller going away cancels the forwarding, which aborts the request to the worker.
  res.once('close', () => {
    if (settled || res.writableFinished) return;
    fail(
      responseStarted ? 'ResponseBodyClient' : req.complete ? 'RequestCanceled' : 'RequestBodyCanceled',
      'the caller disconnected',
    );
  });

  proxyReq.on('error', (err) => fail(responseStarted ? 'ResponseBodyDestination' : 'Request', err.message));
  proxyReq.on('response', (proxyRes) => {
    if (settled) {
      proxyRes.destroy();
      return;
    }
    responseStarted = true;
    activity.refresh();
    res.writeHead(proxyRes.statusCode ?? 502, responseHeaders(proxyRes, options.extraResponseHeaders));
    options.observe?.head(proxyRes.statusCode ?? 502, proxyRes.headers);
    proxyRes.on('data', (chunk: Buffer) => {
      activity.refresh();
      options.observe?.chunk(chunk);
    });
    proxyRes.on('end', () => settle({}));
    proxyRes.on('close', () => {
      if (!proxyRes.complete) fail('ResponseBodyDestination', 'the worker aborted the response');
    });
    // The host completes the caller's response once the invocation is done too (see host.ts).
    proxyRes.pipe(res, { end: false });
  });

  const declared = Number(req.headers['content-length'] ?? 0);
  const hasBody = declared > 0 || req.headers['transfer-encoding'] !== undefined;
  let aborting = false;
  // Past the limit Kestrel fails the read: the worker has the request (headers at least, as YARP
  // sends them first) and then sees its connection end. Nothing more of the body goes through.
  const abortBody = () => {
    if (aborting || settled) return;
    aborting = true;
    req.resume();
    proxyReq.flushHeaders();
    const abort = () => setImmediate(() => fail('RequestBodyClient', tooLarge(options.bodyLimit)));
    const whenConnected = (socket: Socket) => (socket.connecting ? socket.once('connect', abort) : abort());
    if (proxyReq.socket) whenConnected(proxyReq.socket);
    else proxyReq.once('socket', whenConnected);
  };
  if (!hasBody) {
    proxyReq.end();
  } else if (declared > options.bodyLimit) {
    abortBody();
  } else {
    // Not pipe(): no byte past the limit may reach the worker, as Kestrel never hands them out.
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      if (settled || aborting) return;
      received += chunk.length;
      activity.refresh();
      if (received > options.bodyLimit) {
        abortBody();
      } else if (!proxyReq.write(chunk)) {
        req.pause();
        proxyReq.once('drain', () => req.resume());
      }
    });
    req.on('end', () => {
      if (!settled && !aborting) proxyReq.end();
    });
    req.on('error', (err) => fail('RequestBodyClient', err.message));
  }

  return { outcome };
}

function tooLarge(limit: number): string {
  return `Request body too large. The max request body size is ${limit} bytes.`;
}

function forwardedHeaders(req: IncomingMessage, target: ForwardTarget, invocationId: string): string[] {
  const connectionTokens = new Set(
    (req.headers.connection ?? '')
      .split(',')
      .map((token) => token.trim().toLowerCase())
      .filter((token) => token !== ''),
  );
  const headers: string[] = ['Host', `${target.hostHeader}`];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (
      HOP_BY_HOP.has(lower) ||
      FORWARDED.has(lower) ||
      connectionTokens.has(lower) ||
      lower === 'x-ms-invocation-id'
    ) {
      continue;
    }
    headers.push(name, raw[i + 1]!);
  }
  if (req.headers['transfer-encoding'] !== undefined) headers.push('Transfer-Encoding', 'chunked');
  headers.push(
    'X-Forwarded-For',
    req.socket.remoteAddress ?? '',
    'X-Forwarded-Proto',
    'encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http',
    'X-Forwarded-Host',
    req.headers.host ?? '',
    'x-ms-invocation-id',
    invocationId,
  );
  return headers;
}

/** The worker's response headers minus hop-by-hop ones, with the host's own headers applied last. */
function responseHeaders(proxyRes: IncomingMessage, extra: [string, string][]): string[] {
  const overridden = new Set(extra.map(([name]) => name.toLowerCase()).filter((name) => name !== 'vary'));
  const flat: string[] = [];
  const raw = proxyRes.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if ((HOP_BY_HOP.has(lower) && lower !== 'host') || overridden.has(lower)) continue;
    flat.push(raw[i]!, raw[i + 1]!);
  }
  for (const [name, value] of extra) flat.push(name, value);
  return flat;
}
