import { authenticator } from './auth/authenticate.js';
import type { Caller } from './auth/caller.js';
import { CosmosClient, type DocumentAddress } from './cosmos/client.js';
import { assertValidId } from './cosmos/ids.js';
import { BridgeError, errorResponse, isCallerError } from './http/errors.js';
import { describeError, silentLogger, type Logger } from './log.js';
import { BlobMediaStore } from './media/blob-store.js';
import { ReplayMemory } from './multipart/replay.js';
import { targetAllowed } from './policy/targets.js';
import { writePolicy } from './policy/write-policy.js';
import type { RouteContext } from './routes/attachment-writer.js';
import { createAttachments } from './routes/create-attachments.js';
import { receiveWebhook } from './routes/webhook.js';
import type { Settings } from './settings.js';

/** The route prefix host.json declares; the core sees the same URLs the Functions host does. */
export const ROUTE_PREFIX = 'api';
const TARGET = String.raw`dbs/([^/]+)/colls/([^/]+)/docs/([^/]+)/attachments/?$`;
const ATTACHMENTS_ROUTE = new RegExp(`^/${ROUTE_PREFIX}/${TARGET}`);
const WEBHOOK_ROUTE = new RegExp(`^/${ROUTE_PREFIX}/webhooks/${TARGET}`);

export interface BridgeOptions {
  settings: Settings;
  /**
   * When set, callers of the upload route must present this key in `x-functions-key` or `?code=`, as
   * authLevel `function` asks. In Azure the Functions host checks keys before the core runs, so it is
   * left unset there. Not used when end users sign in (AUTH_JWT_ISSUER, AUTH_EASY_AUTH).
   */
  functionKey?: string | undefined;
  log?: Logger;
}

/** The bridge core: a web-standard `Request` in, a `Response` out, whatever hosts it. */
export interface Bridge {
  readonly fetch: (request: Request) => Promise<Response>;
  readonly close: () => Promise<void>;
}

export function createBridge({ settings, functionKey, log = silentLogger }: BridgeOptions): Bridge {
  const cosmos = new CosmosClient({
    ...settings.cosmos,
    timeoutMs: settings.upstream.timeoutMs,
    connections: settings.upstream.connections,
    retryBudgetMs: settings.upstream.retryBudgetMs,
    log,
  });
  const authenticate = authenticator(settings.auth, functionKey);
  const blobs =
    settings.media.store === 'blob'
      ? new BlobMediaStore(settings.media, settings.upstream.timeoutMs, log)
      : undefined;
  // Work left for after an answer (looking again for a create stored late), dropped on close.
  const pending = new Set<NodeJS.Timeout>();
  const later = (task: () => Promise<void>, delayMs: number) => {
    const timer = setTimeout(() => {
      pending.delete(timer);
      task().catch((err: unknown) => log.error('a deferred check failed', describeError(err)));
    }, delayMs);
    timer.unref();
    pending.add(timer);
  };
  const replayMemory = new ReplayMemory(settings.upstream.replayMemoryBytes);
  const contextFor = (caller: Caller | undefined): RouteContext => ({
    cosmos,
    settings,
    log,
    blobs,
    later,
    replayMemory,
    policy: writePolicy(settings, caller),
  });

  async function route(request: Request, url: URL): Promise<Response> {
    const upload = ATTACHMENTS_ROUTE.exec(url.pathname);
    if (upload) {
      const caller = await authenticate(request, url);
      return createAttachments(request, target(request, upload), contextFor(caller));
    }
    const webhook = WEBHOOK_ROUTE.exec(url.pathname);
    if (webhook && settings.webhookSecrets.length > 0) {
      const address = target(request, webhook);
      return receiveWebhook(request, url, address, {
        ...contextFor(undefined),
        webhookSecrets: settings.webhookSecrets,
      });
    }
    throw new BridgeError('NotFound', 'No such route.');
  }

  /** Method, ids and ALLOWED_TARGETS: all refused before anything is sent upstream. */
  function target(request: Request, match: RegExpExecArray): DocumentAddress {
    if (request.method !== 'POST') {
      throw new BridgeError('MethodNotAllowed', 'Only POST is supported on this route.', { allow: 'POST' });
    }
    const address: DocumentAddress = {
      db: pathId(match[1]!, 'database id'),
      coll: pathId(match[2]!, 'collection id'),
      doc: pathId(match[3]!, 'document id'),
    };
    if (!targetAllowed(settings.allowedTargets, address.db, address.coll)) {
      throw new BridgeError(
        'Forbidden',
        `Writing to ${address.db}/${address.coll} is not allowed (ALLOWED_TARGETS).`,
      );
    }
    return address;
  }

  return {
    async fetch(request) {
      const started = performance.now();
      const url = new URL(request.url);
      let response: Response;
      let code: string | undefined;
      try {
        response = await route(request, url);
      } catch (err) {
        const failure = isCallerError(err)
          ? err
          : new BridgeError('InternalError', 'The bridge failed unexpectedly.');
        if (!isCallerError(err))
          log.error('unexpected failure', { path: url.pathname, ...describeError(err) });
        code = failure.code;
        response = errorResponse(failure);
      }
      // The path only: the query may hold a function key (`?code=`).
      log.info('request', {
        method: request.method,
        path: url.pathname,
        status: response.status,
        ...(code === undefined ? {} : { code }),
        ms: Math.round(performance.now() - started),
      });
      return response;
    },
    async close() {
      if (pending.size > 0) log.warn('closing with deferred checks not yet run', { count: pending.size });
      for (const timer of pending) clearTimeout(timer);
      pending.clear();
      await cosmos.close();
    },
  };
}

/** A route segment as an id: decoded once; encoded separators or a second layer of encoding are refused. */
function pathId(segment: string, what: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    throw new BridgeError('InvalidId', `The ${what} in the path has malformed percent-encoding.`);
  }
  if (/%[0-9a-f]{2}/i.test(decoded)) {
    throw new BridgeError('InvalidId', `The ${what} in the path is percent-encoded twice.`);
  }
  return assertValidId(decoded, `${what} in the path`);
}
