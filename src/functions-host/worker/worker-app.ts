// What the worker knows about the loaded app, as the Node worker's AppContext holds it.
import type {
  FunctionMetadata,
  InvocationResponse,
  RpcLog,
  RpcLogCategory,
  RpcLogLevel,
} from '../protocol.js';

export type FunctionCallback = (...args: unknown[]) => unknown;
export type HookCallback = (context: unknown) => unknown;
export type HookData = Record<string, unknown>;
export const HOOK_NAMES = ['preInvocation', 'postInvocation', 'appStart', 'appTerminate', 'log'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

/** The worker's CoreInvocationContext, which `@azure/functions` reads. */
export interface CoreInvocationContext {
  invocationId: string;
  request: unknown;
  metadata: FunctionMetadata;
  state?: 'preInvocationHooks' | 'postInvocationHooks' | 'invocation';
  log(level: RpcLogLevel, logCategory: RpcLogCategory, message: string): void;
}

export interface CoreInvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], callback: FunctionCallback): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<Omit<InvocationResponse, 'result'>>;
}

export interface CoreProgrammingModel {
  name: string;
  version: string;
  getInvocationModel(context: CoreInvocationContext): CoreInvocationModel | Promise<CoreInvocationModel>;
  getCapabilities?(capabilities: Record<string, string>): Promise<Record<string, string>>;
}

export interface RegisteredFunction {
  metadata: FunctionMetadata;
  callback: FunctionCallback;
}

/** A log on its way to the host, with the invocation it belongs to (for log hooks). */
export interface InvocationLogContext {
  hookData: HookData;
  invocationContext: unknown;
}

export class WorkerApp {
  programmingModel: CoreProgrammingModel | undefined;
  readonly functions = new Map<string, RegisteredFunction>();
  readonly hooks: Record<HookName, HookCallback[]> = {
    preInvocation: [],
    postInvocation: [],
    appStart: [],
    appTerminate: [],
    log: [],
  };
  /** Shared by every hook of the app. */
  readonly appHookData: HookData = {};
  /** Shared by app-level hooks (appStart, appTerminate) only. */
  readonly appLevelOnlyHookData: HookData = {};
  workerIndexingLocked = false;
  isUsingWorkerIndexing = false;
  currentEntryPoint: string | undefined;
  blockingAppStartError: Error | undefined;

  constructor(private readonly send: (log: RpcLog) => void) {}

  /**
   * Sends a log to the host after the app's log hooks saw it; hooks may change the level and message
   * of user logs only, and a throwing hook never stops a log (as in the worker's WorkerContext.log).
   */
  log(log: RpcLog, invocation?: InvocationLogContext): void {
    try {
      const context = new LogHookContext(log, invocation, this.appHookData);
      for (const hook of this.hooks.log) hook(context);
      if (log.logCategory === 'user') {
        log.message = context.message;
        log.level = context.level;
      }
    } catch {
      // A user hook must not prevent system logs.
    }
    this.send(log);
  }
}

class LogHookContext {
  level: RpcLogLevel;
  message: string;
  readonly #category: RpcLogCategory;
  readonly #hookData: HookData;
  readonly #appHookData: HookData;
  readonly #invocationContext: unknown;

  constructor(log: RpcLog, invocation: InvocationLogContext | undefined, appHookData: HookData) {
    this.level = log.level;
    this.message = log.message;
    this.#category = log.logCategory;
    this.#hookData = invocation?.hookData ?? {};
    this.#appHookData = appHookData;
    this.#invocationContext = invocation?.invocationContext;
  }
  get category(): RpcLogCategory {
    return this.#category;
  }
  get hookData(): HookData {
    return this.#hookData;
  }
  get appHookData(): HookData {
    return this.#appHookData;
  }
  get invocationContext(): unknown {
    return this.#invocationContext;
  }
}
