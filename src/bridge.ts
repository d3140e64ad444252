import { randomUUID } from 'node:crypto';
import { runTask, type CleanupContext } from './attachments/cleanup.js';
import { authenticator } from './auth/authenticate.js';
import { CosmosClient } from './cosmos/client.js';
import { CosmosError } from './cosmos/errors.js';
import type { RequestContext } from './features/context.js';
import { runCompletionTask } from './features/uploads/finish.js';
import { toCallerError } from './http/error-edge.js';
import { BridgeError, errorResponse } from './http/errors.js';
import { describeError, silentLogger, type Logger } from './log.js';
import { BlobMediaStore } from './media/blob.js';
import { BlobStoreError } from './media/blob-errors.js';
import { ManagedMediaStore } from './media/managed.js';
import type { MediaStore } from './media/store.js';
import { ReplayMemory } from './multipart/replay.js';
import { accessPolicy } from './policy/access-policy.js';
import { StorageCleanupQueue, type CleanupQueue } from './recovery/queue.js';
import { MAX_TASK_FAILURES, parseTask, retryDelayMs, taskIds } from './recovery/tasks.js';
import { paramsOf, routeFor, ROUTES, type Route } from './routes.js';
import type { Settings } from './settings.js';

/** The route prefix host.json declares by default; `fetch` routes under it. */
export const ROUTE_PREFIX = 'api';
/** Attempts the Functions host makes at a queue message before it goes to the poison queue (host.json `extensions.queues.maxDequeueCount`). */
export const MAX_DEQUEUE_COUNT = 5;

export interface BridgeOptions {
  settings: Settings;
  /**
   * When set, callers of `caller` routes must present this key in `x-functions-key` or `?code=`, as
   * authLevel `function` asks. In Azure the Functions host checks keys before the core runs, so it is
   * left unset there. Not used when end users sign in (AUTH_JWT_ISSUER, AUTH_EASY_AUTH).
   */
  functionKey?: string | undefined;
  log?: Logger;
  /** Where clean-up work goes; an Azure Storage queue from the settings by default. */
  queue?: CleanupQueue;
}

/** One request's log and id, from whatever hosts the core (the Functions invocation, say). */
export interface Scope {
  log: Logger;
  /** Sent back as `x-request-id`: the invocation id in Azure. */
  requestId: string;
}

/** The bridge core: a web-standard `Request` in, a `Response` out, whatever hosts it. */
export interface Bridge {
  readonly settings: Settings;
  /** Serves a request for one route of the table (what the Functions host routed to). */
  readonly serve: (route: Route, request: Request, scope?: Scope) => Promise<Response>;
  /** Routes by URL under ROUTE_PREFIX, as the Functions host would, and serves. */
  readonly fetch: (request: Request) => Promise<Response>;
  /**
   * Does one task from the durable queue (clean-up, or finishing a resumable upload's completion);
   * throws when it must be tried again.
   */
  readonly cleanUp: (message: unknown, attempt: { dequeueCount: number; log?: Logger }) => Promise<void>;
  readonly close: () => Promise<void>;
}

export function createBridge({ settings, functionKey, log = silentLogger, queue }: BridgeOptions): Bridge {
  const cosmos = new CosmosClient({
    ...settings.cosmos,
    timeoutMs: settings.upstream.timeoutMs,
    connections: settings.upstream.connections,
    retryBudgetMs: settings.upstream.retryBudgetMs,
    log,
  });
  const authenticate = authenticator(settings.auth, functionKey);
  const timeoutMs = settings.upstream.timeoutMs;
  const media: MediaStore =
    settings.media.store === 'blob'
      ? new BlobMediaStore(cosmos, settings.media, timeoutMs)
      : new ManagedMediaStore(cosmos, { timeoutMs });
  const cleanupQueue = queue ?? new StorageCleanupQueue(settings.cleanup, timeoutMs);
  const replayMemory = new ReplayMemory(settings.upstream.replayMemoryBytes);
  const cleanupContext = (scopeLog: Logger): CleanupContext => ({
    cosmos,
    media,
    queue: cleanupQueue,
    log: scopeLog,
    timeoutMs,
  });

  /** What a queued task that does a request's work needs: a request's context, with no caller. */
  const taskContext = (scopeLog: Logger): RequestContext => ({
    ...cleanupContext(scopeLog),
    settings,
    replayMemory,
    caller: undefined,
    policy: accessPolicy(settings, undefined),
    cleanupBudgetMs: settings.upstream.retryBudgetMs,
  });

  async function serve(route: Route, request: Request, scope: Scope = newScope(log)): Promise<Response> {
    const started = performance.now();
    const url = new URL(request.url);
    let response: Response;
    let code: string | undefined;
    try {
      const params = paramsOf(route, url.pathname);
      if (!params) throw new BridgeError('NotFound', 'No such route.');
      if (!route.methods.includes(request.method as Route['methods'][number])) {
        throw new BridgeError('MethodNotAllowed', `Only ${route.methods.join(', ')} on this route.`, {
          allow: route.methods.join(', '),
        });
      }
      const caller = route.access === 'caller' ? await authenticate(request, url) : undefined;
      const context: RequestContext = {
        ...cleanupContext(scope.log),
        settings,
        replayMemory,
        caller,
        policy: accessPolicy(settings, caller),
        cleanupBudgetMs: settings.upstream.retryBudgetMs,
      };
      response = await route.handle(request, params, context);
    } catch (err) {
      const failure = toCallerError(err);
      if (!failure) scope.log.error('unexpected failure', { path: url.pathname, ...describeError(err) });
      else logUpstreamTrouble(err, scope.log);
      const answer = failure ?? new BridgeError('InternalError', 'The bridge failed unexpectedly.');
      code = answer.code;
      response = errorResponse(answer);
    }
    response.headers.set('x-request-id', scope.requestId);
    // Refusals and failures only: the Functions host already logs every invocation with its outcome
    // and duration (and Application Insights every request with its status), and a line per request
    // is a message to the host per request, about 7 % of the worker's CPU for a small one (docs/performance.md).
    if (response.status >= 400) {
      // The path only: the query may hold a function key (`?code=`).
      scope.log[levelOf(code)]('request', {
        method: request.method,
        path: url.pathname,
        status: response.status,
        ...(code === undefined ? {} : { code }),
        ms: Math.round(performance.now() - started),
      });
    }
    return response;
  }

  return {
    settings,
    serve,
    fetch(request) {
      return serve(routeFor(request.method, new URL(request.url).pathname, ROUTE_PREFIX), request);
    },
    async cleanUp(message, { dequeueCount, log: taskLog = log }) {
      let task;
      try {
        task = parseTask(message);
      } catch (err) {
        // Not ours, or corrupt: trying again cannot help.
        taskLog.error('dropped a queue message that is not a clean-up task', describeError(err));
        return;
      }
      try {
        if (task.kind === 'complete-upload') await runCompletionTask(taskContext(taskLog), task);
        else await runTask(cleanupContext(taskLog), task);
      } catch (err) {
        const failures = (task.failures ?? 0) + 1;
        const fields = { ...taskIds(task), failures, ...describeError(err) };
        if (failures < MAX_TASK_FAILURES) {
          // Back on the queue a while later, rather than straight away: what failed is usually a
          // service that needs time (the host's own retries, by contrast, come within seconds).
          taskLog.warn('clean-up failed; it will be tried again', fields);
          await cleanupQueue.send({ ...task, failures }, retryDelayMs(failures));
          return;
        }
        const last = dequeueCount >= MAX_DEQUEUE_COUNT;
        if (last)
          taskLog.error('clean-up gave up after its last attempt; the task goes to the poison queue', fields);
        else
          taskLog.warn('clean-up failed for the last time; the host will try it again', {
            ...fields,
            dequeueCount,
          });
        throw err;
      }
    },
    async close() {
      await cleanupQueue.close();
      await media.close();
      await cosmos.close();
    },
  };
}

/**
 * How much a request's outcome matters to an operator: the bridge's own configuration or a bug is an
 * error; a struggling upstream a warning; anything a caller did (a 4xx, leaving) is information.
 */
function levelOf(code: string | undefined): keyof Logger {
  if (code === undefined) return 'info';
  if (['UpstreamAuthFailed', 'ConfigurationError', 'InternalError', 'UpstreamBadResponse'].includes(code))
    return 'error';
  if (['UpstreamUnreachable', 'UpstreamTimeout', 'UpstreamUnavailable', 'AuthUnavailable'].includes(code))
    return 'warn';
  return 'info';
}

/** What an operator needs to find a connection that failed: the host it tried and why (no secrets). */
function logUpstreamTrouble(err: unknown, log: Logger): void {
  if (err instanceof CosmosError) {
    const cause = err.cause as
      | { code?: unknown; message?: unknown; hostname?: unknown; address?: unknown; port?: unknown }
      | undefined;
    log.warn(err.message, {
      upstream: 'cosmos',
      code: err.code,
      cause: typeof cause?.code === 'string' ? cause.code : undefined,
      detail: typeof cause?.message === 'string' ? cause.message : undefined,
    });
  } else if (err instanceof BlobStoreError && (err.code === 'BLOB_UNREACHABLE' || err.code === 'BLOB_AUTH')) {
    const level = err.code === 'BLOB_AUTH' ? 'error' : 'warn';
    log[level](err.message, { upstream: 'blob', code: err.code, ...describeError(err.cause) });
  }
}

function newScope(log: Logger): Scope {
  return { log, requestId: randomUUID() };
}

export { ROUTES };
