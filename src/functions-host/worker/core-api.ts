// The `@azure/functions-core` module: the API the Node worker gives the app at run time. The real
// worker (azure-functions-nodejs-worker, src/setupCoreModule.ts) intercepts `require` for that name;
// `@azure/functions` 4.x calls log, registerHook, setProgrammingModel and registerFunction on it.
import Module from 'node:module';
import { basename, dirname } from 'node:path';
import type { FunctionMetadata, RpcLogCategory, RpcLogLevel } from '../protocol.js';
import {
  HOOK_NAMES,
  type CoreProgrammingModel,
  type FunctionCallback,
  type HookCallback,
  type HookName,
  type WorkerApp,
} from './worker-app.js';

/** The worker version this host stands in for (the real worker reports its package version). */
export const WORKER_VERSION = '3.12.0';

export class Disposable {
  #callOnDispose: (() => unknown) | undefined;
  constructor(callOnDispose: () => unknown) {
    this.#callOnDispose = callOnDispose;
  }
  static from(...likes: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => likes.forEach((like) => like.dispose()));
  }
  dispose(): unknown {
    const callOnDispose = this.#callOnDispose;
    this.#callOnDispose = undefined;
    return callOnDispose?.();
  }
}

/** An error of the worker itself (not of the app), as the worker's AzFuncSystemError marks them. */
export class WorkerSystemError extends Error {
  readonly isAzureFunctionsSystemError = true;
}

export function createCoreApi(app: WorkerApp, hostVersion: () => string) {
  return {
    version: WORKER_VERSION,
    get hostVersion() {
      return hostVersion();
    },
    registerHook(hookName: string, callback: HookCallback): Disposable {
      if (!(HOOK_NAMES as readonly string[]).includes(hookName)) {
        throw Object.assign(new RangeError(`Unrecognized hook "${hookName}"`), {
          isAzureFunctionsSystemError: true,
        });
      }
      const hooks = app.hooks[hookName as HookName];
      hooks.push(callback);
      return new Disposable(() => {
        const index = hooks.indexOf(callback);
        if (index > -1) hooks.splice(index, 1);
      });
    },
    setProgrammingModel(programmingModel: CoreProgrammingModel): void {
      if (app.programmingModel) {
        app.log({
          message: `Setting Node.js programming model to "${programmingModel.name}" version "${programmingModel.version}"`,
          level: 'information',
          logCategory: 'system',
        });
      }
      app.programmingModel = programmingModel;
    },
    getProgrammingModel(): CoreProgrammingModel | undefined {
      return app.programmingModel;
    },
    log(level: RpcLogLevel, logCategory: RpcLogCategory, message: string): void {
      app.log({ level, logCategory, message });
    },
    registerFunction(metadata: FunctionMetadata, callback: FunctionCallback): Disposable {
      if (app.workerIndexingLocked) {
        throw new WorkerSystemError('A function can only be registered during app startup.');
      }
      app.isUsingWorkerIndexing = true;
      const functionId = metadata.functionId || metadata.name;
      if (app.functions.has(functionId)) {
        throw new WorkerSystemError(`A function with id "${functionId}" has already been registered.`);
      }
      // `rawBindings` is what the host reads; `scriptFile` is a best guess, as in the real worker.
      const registered: FunctionMetadata = {
        ...metadata,
        functionId,
        rawBindings: Object.entries(metadata.bindings).map(([name, binding]) =>
          JSON.stringify({ ...binding, name }),
        ),
        scriptFile: app.currentEntryPoint ? basename(app.currentEntryPoint) : 'unknown',
        ...(app.currentEntryPoint ? { directory: dirname(app.currentEntryPoint) } : {}),
      };
      app.functions.set(functionId, { metadata: registered, callback });
      return new Disposable(() => {
        if (app.workerIndexingLocked) {
          throw new WorkerSystemError('A function can only be disposed during app startup.');
        }
        app.functions.delete(functionId);
      });
    },
    Disposable,
  };
}

type Require = (this: unknown, id: string) => unknown;

/** Makes `require('@azure/functions-core')` return the core API in every module of this process. */
export function provideCoreModule(coreApi: ReturnType<typeof createCoreApi>): void {
  const prototype = Module.prototype as unknown as { require: Require };
  prototype.require = new Proxy(prototype.require, {
    apply(target, thisArg, args: [string]) {
      return args[0] === '@azure/functions-core' ? coreApi : Reflect.apply(target, thisArg, args);
    },
  });
}
