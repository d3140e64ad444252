// A local Azure Functions host: the host's part (front HTTP server, routes, keys, CORS, request body
// limit, forwarding to the worker's HTTP proxy, queue and timer triggers, admin API, logs) in this
// process, the worker's part in a child process running the app through `@azure/functions`.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { SecureVersion } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { handleAdmin } from './admin-api.js';
import { readHostJson, readLocalSettings, type LocalSettings } from './config.js';
import { corsPolicy, evaluateCors } from './cors.js';
import { HostLogs, type HostLogRecord } from './host-logs.js';
import { httpTriggerMetadata } from './http-trigger-metadata.js';
import { forward, type ResponseObserver } from './http-forwarder.js';
import type { Invoke, InvocationResult } from './invoker.js';
import { authorizes, generateKey, keyFromRequest, levelOfKey, type HostKeys } from './keys.js';
import type { InvocationRequest, InvocationResponse, ParameterBinding, RpcTypedData } from './protocol.js';
import { parseQuery } from './query.js';
import { QueueListener, queueTriggers } from './queue-trigger.js';
import { decodePath, isAdminPath, matchRoute, type RouteMatch } from './routing/route-table.js';
import { TimerListener, timerTriggers } from './timer-trigger.js';
import { invocationTraceContext } from './trace-context.js';
import { WorkerExitedError } from './worker-channel.js';
import { WorkerRuntime, type Indexed } from './worker-runtime.js';

export const DEFAULT_PORT = 7071;
/** YARP's ActivityTimeout in the host's DefaultHttpProxyService. */
export const DEFAULT_ACTIVITY_TIMEOUT_MS = 240_000;
/** The host's default for FUNCTIONS_REQUEST_BODY_SIZE_LIMIT (HttpRequestSizeMiddleware). */
export const DEFAULT_REQUEST_BODY_SIZE_LIMIT = 104_857_600;
/** Settings (environment or local.settings.json Values) that give the keys when the options do not. */
export const FUNCTION_KEY_SETTING = 'FUNCTIONS_HOST_FUNCTION_KEY';
export const MASTER_KEY_SETTING = 'FUNCTIONS_HOST_MASTER_KEY';

export interface FunctionsHostOptions {
  /** The app folder: package.json (`main`), host.json and local.settings.json. */
  appDir: string;
  /**
   * The environment; `process.env` by default. local.settings.json `Values` fill in what it lacks
   * (the environment wins, as with Core Tools), and the result is the worker's environment.
   */
  env?: Record<string, string | undefined>;
  /** Read local.settings.json from the app folder (default true). */
  localSettings?: boolean;
  /** 0 for any free port; default local.settings.json `Host.LocalHttpPort`, else 7071. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The host's function key; else FUNCTIONS_HOST_FUNCTION_KEY from the environment; else generated. */
  functionKey?: string;
  /** The master key; else FUNCTIONS_HOST_MASTER_KEY from the environment; else generated. */
  masterKey?: string;
  /** How long a forwarded request may see no activity (240 s, as in Azure). */
  activityTimeoutMs?: number;
  /** Caps the wait between polls of an empty queue (host.json maxPollingInterval, 1 min, otherwise). */
  queuePollMs?: number;
  /**
   * How long a queue message being processed stays invisible (renewed while it runs): 10 minutes, as
   * in Azure; tests that kill an instance mid-message shorten it.
   */
  queueReceiveVisibilitySeconds?: number;
  /** CORS origins, comma-separated; default local.settings.json `Host.CORS`. */
  cors?: string;
  corsCredentials?: boolean;
  /**
   * Serve HTTPS instead of HTTP, as `func start --useHttps` does: a certificate and key (PEM), and
   * optionally the oldest TLS version and the ciphers accepted (Node's defaults otherwise).
   */
  https?: { cert: string | Buffer; key: string | Buffer; minVersion?: SecureVersion; ciphers?: string };
  /** Print logs as JSON lines (default true). */
  log?: boolean;
  onLog?: (record: HostLogRecord) => void;
  /** Sees every answer a function gives (for tests that scan what callers receive). */
  observeResponses?: () => ResponseObserver;
  /** Node options for the worker process. */
  workerNodeArgs?: string[];
  /** Time zone for timer schedules; default WEBSITE_TIME_ZONE or TZ from the environment, else UTC. */
  timeZone?: string;
}

export interface FunctionInfo {
  name: string;
  /** The trigger type, e.g. `httpTrigger`, `queueTrigger`, `timerTrigger`. */
  trigger: string;
  route?: string;
  url?: string;
  methods?: string[];
  authLevel?: string;
  queueName?: string;
  schedule?: string;
}

export interface FunctionsHost {
  /** e.g. `http://127.0.0.1:7071` */
  readonly url: string;
  readonly routePrefix: string;
  readonly functionKey: string;
  readonly masterKey: string;
  /** What the app registered (empty when its entry point failed to load). */
  readonly functions: FunctionInfo[];
  /** The entry point's load error, when it failed. */
  readonly loadError: string | undefined;
  /** Everything logged so far (the host's and the worker's). */
  readonly logs: HostLogRecord[];
  readonly worker: { readonly pid: number; kill(signal?: NodeJS.Signals): void; ready(): Promise<void> };
  close(): Promise<void>;
}

export async function startFunctionsHost(options: FunctionsHostOptions): Promise<FunctionsHost> {
  const appDir = resolve(options.appDir);
  const local: LocalSettings =
    options.localSettings === false
      ? { values: {}, localHttpPort: undefined, cors: undefined, corsCredentials: false }
      : await readLocalSettings(appDir);
  const env: Record<string, string | undefined> = { ...local.values, ...(options.env ?? process.env) };
  // Keys may come from the environment; the app never sees them there (as in Azure).
  const configuredFunctionKey = options.functionKey || env[FUNCTION_KEY_SETTING];
  const configuredMasterKey = options.masterKey || env[MASTER_KEY_SETTING];
  delete env[FUNCTION_KEY_SETTING];
  delete env[MASTER_KEY_SETTING];
  const hostJson = await readHostJson(appDir);
  const cors = corsPolicy(options.cors ?? local.cors, options.corsCredentials ?? local.corsCredentials);
  const keys: HostKeys = {
    functionKey: configuredFunctionKey || generateKey(),
    masterKey: configuredMasterKey || generateKey(),
  };
  const bodyLimit = readBodyLimit(env.FUNCTIONS_REQUEST_BODY_SIZE_LIMIT);
  const activityTimeoutMs = options.activityTimeoutMs ?? DEFAULT_ACTIVITY_TIMEOUT_MS;
  const logs = new HostLogs({ print: options.log ?? true, onLog: options.onLog });

  const runtime = await WorkerRuntime.start({
    appDir,
    env,
    logs,
    nodeArgs: options.workerNodeArgs,
    routePrefix: hostJson.routePrefix,
  });
  const first = runtime.current!;

  const invoke = invoker(runtime);
  // Kestrel's limit on request headers (MaxRequestHeadersTotalSize, 32 KiB): past it, 431 and no body.
  const serverOptions = { requestTimeout: 0, headersTimeout: 30_000, maxHeaderSize: 32 * 1024 };
  const serve = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      logs.host('error', 'Host.Http', `Unexpected failure: ${(err as Error).message}`);
      if (!res.headersSent) answer(res, 500, []);
      else res.destroy();
    });
  };
  const server = options.https
    ? createHttpsServer({ ...serverOptions, ...options.https }, serve)
    : createServer(serverOptions, serve);
  // Kestrel keeps idle connections for 130 s.
  server.keepAliveTimeout = 130_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const corsResult = cors ? evaluateCors(cors, req) : { preflight: false, headers: [] };
    if (corsResult.preflight) return answer(res, 204, corsResult.headers);
    const url = req.url ?? '/';
    const queryStart = url.indexOf('?');
    const path = decodePath(queryStart < 0 ? url : url.slice(0, queryStart));
    const query = parseQuery(queryStart < 0 ? '' : url.slice(queryStart));
    const level = levelOfKey(keyFromRequest(req, query), keys);
    if (isAdminPath(path)) {
      return handleAdmin(req, res, path, level === 'admin', {
        functions: () => runtime.current?.functions ?? [],
        invoke,
        logs,
        answer: (r, status) => answer(r, status, corsResult.headers),
      });
    }
    const indexed = runtime.current;
    if (!indexed) return answer(res, 503, corsResult.headers);
    const match = matchRoute(indexed.routes, req.method ?? 'GET', path);
    if (!match) return answer(res, 404, corsResult.headers);
    if (!authorizes(level, match.route.authLevel)) return answer(res, 401, corsResult.headers);
    await invokeHttp(req, res, indexed, match, query, corsResult.headers);
  }

  async function invokeHttp(
    req: IncomingMessage,
    res: ServerResponse,
    indexed: Indexed,
    match: RouteMatch,
    query: ReturnType<typeof parseQuery>,
    extraHeaders: [string, string][],
  ): Promise<void> {
    const name = match.route.functionName;
    const target = indexed.target;
    if (!target) {
      logs.host(
        'error',
        `Function.${name}`,
        `This host runs HTTP functions only with HTTP streaming: call app.setup({ enableHttpStream: true }) in the app.`,
      );
      return answer(res, 500, extraHeaders);
    }
    const invocationId = randomUUID();
    const traceContext = invocationTraceContext(header(req, 'traceparent'), header(req, 'tracestate'));
    const request: InvocationRequest = {
      invocationId,
      functionId: match.route.functionName,
      inputData: [{ name: match.route.bindingName, data: { http: {} } }],
      triggerMetadata: httpTriggerMetadata(req, query, match.values),
      traceContext,
    };
    const started = performance.now();
    logExecuting(
      name,
      invocationId,
      'This function was programmatically called via the host APIs.',
      traceContext.traceParent,
    );
    // As the host does, forwarding starts before the invocation request goes to the worker.
    const forwarding = forward(req, res, target, {
      invocationId,
      activityTimeoutMs,
      bodyLimit,
      extraResponseHeaders: extraHeaders,
      observe: options.observeResponses?.(),
    });
    const invocation = settleInvocation(indexed.channel.invoke(request));
    const [outcome, response] = await Promise.all([forwarding.outcome, invocation]);
    // The host checks the forwarding first: its failure is the invocation's error.
    const forwardError = outcome.error
      ? `Failed to proxy request with ForwarderError: ${outcome.error}${outcome.detail ? ` (${outcome.detail})` : ''}`
      : undefined;
    logExecuted(name, invocationId, started, forwardError ?? functionError(response));
    if (outcome.error) {
      // The host's ExceptionMiddleware answers 500 when nothing was sent yet; otherwise it aborts.
      if (!res.headersSent)
        answer(
          res,
          500,
          outcome.error === 'RequestBodyClient' ? [...extraHeaders, ['Connection', 'close']] : extraHeaders,
        );
      else res.destroy();
    } else {
      res.end();
    }
  }

  function logExecuting(name: string, invocationId: string, reason: string, traceParent?: string): void {
    logs.host(
      'information',
      `Function.${name}`,
      `Executing 'Functions.${name}' (Reason='${reason}', Id=${invocationId})`,
      {
        invocationId,
        functionName: name,
        ...(traceParent ? { traceParent } : {}),
      },
    );
  }

  function logExecuted(name: string, invocationId: string, started: number, error: string | undefined): void {
    const duration = Math.round(performance.now() - started);
    if (error) {
      logs.host(
        'error',
        `Function.${name}`,
        `Executed 'Functions.${name}' (Failed, Id=${invocationId}, Duration=${duration}ms)`,
        {
          invocationId,
          functionName: name,
          error,
        },
      );
    } else {
      logs.host(
        'information',
        `Function.${name}`,
        `Executed 'Functions.${name}' (Succeeded, Id=${invocationId}, Duration=${duration}ms)`,
        {
          invocationId,
          functionName: name,
        },
      );
    }
  }

  function invoker(workers: WorkerRuntime): Invoke {
    return async ({ functionName, reason, inputData, triggerMetadata }) => {
      const indexed = await workers.ready();
      return runInvocation(indexed, functionName, reason, inputData, triggerMetadata);
    };
  }

  async function runInvocation(
    indexed: Indexed,
    functionName: string,
    reason: string,
    inputData: ParameterBinding[],
    triggerMetadata: Record<string, RpcTypedData>,
  ): Promise<InvocationResult> {
    const invocationId = randomUUID();
    const traceContext = invocationTraceContext();
    const started = performance.now();
    logExecuting(functionName, invocationId, reason, traceContext.traceParent);
    const response = await settleInvocation(
      indexed.channel.invoke({
        invocationId,
        functionId: functionName,
        inputData,
        triggerMetadata,
        traceContext,
      }),
    );
    const error = functionError(response);
    logExecuted(functionName, invocationId, started, error);
    return { succeeded: !error, invocationId, ...(error ? { error } : {}) };
  }

  const listeners = startTriggers(first, env, hostJson.queues, options, invoke, logs);

  const port = options.port ?? local.localHttpPort ?? DEFAULT_PORT;
  const host = options.host ?? '127.0.0.1';
  try {
    await new Promise<void>((resolveListen, rejectListen) => {
      server.once('error', rejectListen);
      server.listen(port, host, () => {
        server.off('error', rejectListen);
        resolveListen();
      });
    });
  } catch (err) {
    await Promise.all(listeners.map((l) => l.stop()));
    await runtime.close(1000);
    throw err;
  }
  const address = server.address() as AddressInfo;
  const url = `${options.https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  const functions = describeFunctions(first, url, env);
  logs.host(
    'information',
    'Host.Startup',
    `Host started: ${url}${hostJson.routePrefix ? `/${hostJson.routePrefix}` : ''}`,
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    routePrefix: hostJson.routePrefix,
    functionKey: keys.functionKey,
    masterKey: keys.masterKey,
    functions,
    loadError: first.channel.loadError,
    logs: logs.records,
    worker: {
      get pid() {
        return runtime.current?.channel.pid ?? -1;
      },
      kill(signal: NodeJS.Signals = 'SIGKILL') {
        runtime.current?.channel.kill(signal);
      },
      async ready() {
        await runtime.ready();
      },
    },
    close() {
      closing ??= (async () => {
        await Promise.all(listeners.map((l) => l.stop()));
        await closeServer(server);
        await runtime.close(5000);
      })();
      return closing;
    },
  };
}

function startTriggers(
  indexed: Indexed,
  env: Record<string, string | undefined>,
  queues: Awaited<ReturnType<typeof readHostJson>>['queues'],
  options: FunctionsHostOptions,
  invoke: Invoke,
  logs: HostLogs,
): { stop(): Promise<void> }[] {
  const listeners: { stop(): Promise<void> }[] = [];
  for (const trigger of queueTriggers(indexed.functions, env)) {
    try {
      listeners.push(
        new QueueListener({
          trigger,
          env,
          queues,
          maxPollMs: options.queuePollMs,
          receiveVisibilitySeconds: options.queueReceiveVisibilitySeconds,
          invoke,
          logs,
        }),
      );
    } catch (err) {
      logs.host('error', `Function.${trigger.functionName}`, (err as Error).message);
    }
  }
  const timeZone = options.timeZone ?? env.WEBSITE_TIME_ZONE ?? env.TZ ?? 'UTC';
  for (const trigger of timerTriggers(indexed.functions, env)) {
    try {
      listeners.push(new TimerListener(trigger, invoke, logs, timeZone));
    } catch (err) {
      logs.host(
        'error',
        `Function.${trigger.functionName}`,
        `The timer schedule "${trigger.schedule}" is not valid: ${(err as Error).message}`,
      );
    }
  }
  return listeners;
}

function describeFunctions(
  indexed: Indexed,
  url: string,
  env: Record<string, string | undefined>,
): FunctionInfo[] {
  const queues = new Map(queueTriggers(indexed.functions, env).map((t) => [t.functionName, t]));
  const timers = new Map(timerTriggers(indexed.functions, env).map((t) => [t.functionName, t]));
  return indexed.functions.map((metadata) => {
    const trigger = Object.values(metadata.bindings).find((b) => /trigger$/i.test(b.type ?? ''));
    const route = indexed.routes.find((r) => r.functionName === metadata.name);
    const info: FunctionInfo = { name: metadata.name, trigger: trigger?.type ?? 'unknown' };
    if (route) {
      info.route = route.template.text;
      info.url = `${url}/${route.template.text}`;
      info.methods = route.methods;
      info.authLevel = route.authLevel;
    }
    const queue = queues.get(metadata.name);
    if (queue) info.queueName = queue.queueName;
    const timer = timers.get(metadata.name);
    if (timer) info.schedule = timer.schedule;
    return info;
  });
}

function functionError(response: InvocationResponse): string | undefined {
  return response.result.status === 'failure'
    ? (response.result.exception?.message ?? 'The function failed.')
    : undefined;
}

/** An invocation that failed to run (worker gone) becomes a failed invocation response. */
async function settleInvocation(invocation: Promise<InvocationResponse>): Promise<InvocationResponse> {
  try {
    return await invocation;
  } catch (err) {
    const message =
      err instanceof WorkerExitedError ? err.message : `The invocation failed: ${(err as Error).message}`;
    return { invocationId: '', result: { status: 'failure', exception: { message } } };
  }
}

/** An empty answer, as the host gives for 404, 401, 500 and preflights. */
function answer(res: ServerResponse, status: number, headers: [string, string][]): void {
  const flat: string[] = ['Content-Length', '0'];
  for (const [name, value] of headers) flat.push(name, value);
  res.writeHead(status, flat);
  res.end();
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** long.TryParse of the setting, as HttpRequestSizeMiddleware reads it; the default otherwise. */
function readBodyLimit(value: string | undefined): number {
  if (value === undefined || !/^\s*[+-]?\d+\s*$/.test(value)) return DEFAULT_REQUEST_BODY_SIZE_LIMIT;
  return Number(value);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolveClose) => {
    server.close(() => resolveClose());
    server.closeAllConnections();
  });
}
