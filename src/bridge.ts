import { createHash, timingSafeEqual } from 'node:crypto';
import { CosmosClient, type DocumentAddress } from './cosmos/client.js';
import { assertValidId } from './cosmos/ids.js';
import { BridgeError, errorResponse, isCallerError } from './http/errors.js';
import { describeError, silentLogger, type Logger } from './log.js';
import { createAttachments, type RouteContext } from './routes/create-attachments.js';
import type { Settings } from './settings.js';

/** The route prefix host.json declares; the core sees the same URLs the Functions host does. */
export const ROUTE_PREFIX = 'api';
const ATTACHMENTS_ROUTE = /^\/api\/dbs\/([^/]+)\/colls\/([^/]+)\/docs\/([^/]+)\/attachments\/?$/;

export interface BridgeOptions {
  settings: Settings;
  /**
   * When set, callers must present this key in `x-functions-key` or `?code=`, as authLevel `function`
   * asks. In Azure the Functions host checks keys before the core runs, so it is left unset there.
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
    timeoutMs: settings.upstreamTimeoutMs,
    connections: settings.upstreamConnections,
  });
  const context: RouteContext = { cosmos, settings, log };

  async function route(request: Request, url: URL): Promise<Response> {
    const match = ATTACHMENTS_ROUTE.exec(url.pathname);
    if (!match) throw new BridgeError('NotFound', 'No such route.');
    if (functionKey !== undefined) checkFunctionKey(request, url, functionKey);
    if (request.method !== 'POST') {
      throw new BridgeError('MethodNotAllowed', 'Only POST is supported on this route.', { allow: 'POST' });
    }
    const address: DocumentAddress = {
      db: pathId(match[1]!, 'database id'),
      coll: pathId(match[2]!, 'collection id'),
      doc: pathId(match[3]!, 'document id'),
    };
    return createAttachments(request, address, context);
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
    close: () => cosmos.close(),
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

function checkFunctionKey(request: Request, url: URL, expected: string): void {
  // As the Functions host does: the header wins over the query string.
  const presented = request.headers.get('x-functions-key') ?? url.searchParams.get('code');
  if (presented === null || !sameSecret(presented, expected)) {
    throw new BridgeError(
      'Unauthorized',
      'A valid function key is required (x-functions-key header or ?code=).',
    );
  }
}

function sameSecret(a: string, b: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(a), digest(b));
}
