// The worker process: forked by the host, it does for the app what the Node worker does (it provides
// `@azure/functions-core`, loads the entry point, reports the registered functions and capabilities,
// and runs invocations), talking to the host over IPC where the real worker uses gRPC.
import { format } from 'node:util';
import type {
  HostToWorker,
  InvocationRequest,
  InvocationResponse,
  RpcException,
  WorkerToHost,
} from '../protocol.js';
import { createCoreApi, provideCoreModule } from './core-api.js';
import { handleInvocation } from './invocation-handler.js';
import { executeHooks, startApp } from './start-app.js';
import { WorkerApp } from './worker-app.js';

/** The capabilities the real worker declares before the programming model adds its own. */
const WORKER_CAPABILITIES: Record<string, string> = {
  RawHttpBodyBytes: 'true',
  RpcHttpTriggerMetadataRemoved: 'true',
  RpcHttpBodyOnly: 'true',
  IgnoreEmptyValuedRpcHttpHeaders: 'true',
  UseNullableValueDictionaryForHttp: 'true',
  WorkerStatus: 'true',
  TypedDataCollection: 'true',
  HandlesWorkerTerminateMessage: 'true',
};

function send(message: WorkerToHost): void {
  process.send?.(message);
}

let hostVersion: string | undefined;
const app = new WorkerApp((log) => send({ type: 'log', log }));
provideCoreModule(
  createCoreApi(app, () => {
    if (!hostVersion) throw new Error('Cannot access hostVersion before worker init');
    return hostVersion;
  }),
);

async function init(appDir: string): Promise<void> {
  app.log({
    message: `Worker ${process.pid} received WorkerInitRequest`,
    level: 'debug',
    logCategory: 'system',
  });
  await startApp(app, appDir);
  let capabilities = { ...WORKER_CAPABILITIES };
  if (app.programmingModel?.getCapabilities) {
    capabilities = await app.programmingModel.getCapabilities(capabilities);
  }
  // The host asks for metadata next; from then on no function may be registered.
  app.workerIndexingLocked = true;
  // A blocking load error fails the metadata request; the host then indexes no function.
  const loadError = app.blockingAppStartError;
  send({
    type: 'ready',
    functions: loadError ? [] : [...app.functions.values()].map((f) => f.metadata),
    capabilities,
    ...(loadError ? { loadError: loadError.message } : {}),
  });
}

async function invoke(request: InvocationRequest): Promise<void> {
  let response: InvocationResponse;
  try {
    response = { ...(await handleInvocation(app, request)), result: { status: 'success' } };
  } catch (err) {
    response = {
      invocationId: request.invocationId,
      result: { status: 'failure', exception: toRpcException(err) },
    };
  }
  send({ type: 'invocationResponse', response });
}

async function terminate(gracePeriodMs: number): Promise<void> {
  const timer = setTimeout(() => process.exit(0), gracePeriodMs);
  try {
    await executeHooks(app, 'appTerminate', {
      get hookData() {
        return app.appLevelOnlyHookData;
      },
      get appHookData() {
        return app.appHookData;
      },
    });
  } catch (err) {
    app.log({ message: `appTerminate hook failed: ${format(err)}`, level: 'error', logCategory: 'system' });
  }
  clearTimeout(timer);
  send({ type: 'terminated' });
  process.disconnect?.();
}

function toRpcException(err: unknown): RpcException {
  if (err instanceof Error) return { message: err.message, stackTrace: err.stack ?? '', source: err.name };
  return { message: format(err) };
}

process.on('message', (message: HostToWorker) => {
  switch (message.type) {
    case 'init':
      hostVersion = message.hostVersion;
      void init(message.appDir).catch((err: unknown) => {
        console.error(err);
        process.exit(1);
      });
      break;
    case 'invoke':
      void invoke(message.request);
      break;
    case 'terminate':
      void terminate(message.gracePeriodMs);
      break;
  }
});

// The host going away takes the worker with it, as a gRPC stream closing does.
process.on('disconnect', () => process.exit(0));
