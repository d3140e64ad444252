import type { HttpHandler, InvocationContext, StorageQueueHandler, TimerHandler } from '@azure/functions';
import { signsInEndUsers } from './auth/authenticate.js';
import { createBridge, type Bridge } from './bridge.js';
import { EXPIRY_FUNCTION, EXPIRY_SCHEDULE, expireUploads } from './features/uploads/expiry.js';
import { invocationLogger, toRequest, toResponseInit } from './http/azure-adapter.js';
import { toCallerError } from './http/error-edge.js';
import { BridgeError, errorResponse } from './http/errors.js';
import { describeError, jsonLineLogger } from './log.js';
import { ROUTES, type Route } from './routes.js';
import { DEFAULTS, loadSettings, SettingsError, type Env } from './settings.js';

/** What registering the app needs from `@azure/functions`' `app` (a structural slice, for clarity). */
export interface FunctionsApp {
  http(
    name: string,
    options: {
      methods: Route['methods'][number][];
      authLevel: 'anonymous' | 'function';
      route: string;
      handler: HttpHandler;
    },
  ): void;
  storageQueue(
    name: string,
    options: { queueName: string; connection: string; handler: StorageQueueHandler },
  ): void;
  timer(name: string, options: { schedule: string; handler: TimerHandler }): void;
}

/** The queue-triggered function that does the durable clean-up work. */
export const CLEANUP_FUNCTION = 'cleanup';

/**
 * Registers every route of the table, and the clean-up queue's consumer, with the Functions host.
 * Never throws: with a setting missing or malformed the routes are still registered and answer 500
 * `ConfigurationError` naming the setting (never its value), so a broken deployment says what is
 * wrong instead of answering 404 everywhere.
 */
export function registerFunctions(app: FunctionsApp, env: Env): Bridge | undefined {
  const startupLog = jsonLineLogger();
  let bridge: Bridge | undefined;
  let configurationError: BridgeError | undefined;
  try {
    // Work outside any invocation (the Cosmos client switching keys, say) logs as JSON lines.
    bridge = createBridge({ settings: loadSettings(env), log: startupLog });
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    configurationError = toCallerError(err);
    startupLog.error('the bridge is misconfigured; every request answers 500 until it is fixed', {
      detail: err.message,
    });
  }
  const endUsers = bridge ? signsInEndUsers(bridge.settings.auth) : false;
  for (const route of ROUTES) {
    app.http(route.name, {
      methods: [...route.methods],
      // Function keys by default; with end-user sign-in the core checks the token or principal itself.
      authLevel: route.access === 'public' || endUsers ? 'anonymous' : 'function',
      route: route.route,
      handler: httpHandler(route, bridge, configurationError),
    });
  }
  // Without settings there is no account to clean up in: the messages wait in the queue until there is.
  if (bridge) {
    const cleaner = bridge;
    app.storageQueue(CLEANUP_FUNCTION, {
      queueName: cleaner.settings.cleanup.queueName ?? DEFAULTS.cleanupQueue,
      connection: 'AzureWebJobsStorage',
      handler: (message, context) =>
        cleaner.cleanUp(message, {
          dequeueCount: Number(context.triggerMetadata?.dequeueCount ?? 1),
          log: invocationLogger(context),
        }),
    });
    // Resumable uploads past their expiry: their staged bytes and state go.
    app.timer(EXPIRY_FUNCTION, {
      schedule: EXPIRY_SCHEDULE,
      handler: async (_timer, context) => {
        await expireUploads(cleaner.settings, invocationLogger(context));
      },
    });
  }
  return bridge;
}

function httpHandler(
  route: Route,
  bridge: Bridge | undefined,
  configurationError: BridgeError | undefined,
): HttpHandler {
  return async (request, context: InvocationContext) => {
    const log = invocationLogger(context);
    try {
      if (!bridge) {
        log.error('request refused: the bridge is misconfigured', { detail: configurationError!.message });
        const response = errorResponse(configurationError!);
        response.headers.set('x-request-id', context.invocationId);
        return toResponseInit(response);
      }
      const response = await bridge.serve(route, toRequest(request), {
        log,
        requestId: context.invocationId,
      });
      return toResponseInit(response);
    } catch (err) {
      // The core answers every failure itself; this is the last guard, because with HTTP streaming a
      // handler that throws leaves the caller hanging (azure-functions-nodejs-library#324).
      log.error('unexpected failure', describeError(err));
      const response = errorResponse(new BridgeError('InternalError', 'The bridge failed unexpectedly.'));
      response.headers.set('x-request-id', context.invocationId);
      return toResponseInit(response);
    }
  };
}
