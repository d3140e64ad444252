// One invocation, step for step as the Node worker's InvocationHandler runs it: the programming model
// builds the arguments, preInvocation hooks may replace the inputs and the callback, the function
// runs, postInvocation hooks see its result or error, and the model turns the result into the
// response. An error of the function is rethrown after the postInvocation hooks ran.
import type { InvocationRequest, InvocationResponse } from '../protocol.js';
import { WorkerSystemError } from './core-api.js';
import { executeHooks } from './start-app.js';
import type { CoreInvocationContext, HookData, WorkerApp } from './worker-app.js';

export async function handleInvocation(
  app: WorkerApp,
  request: InvocationRequest,
): Promise<Omit<InvocationResponse, 'result'>> {
  if (app.blockingAppStartError) throw app.blockingAppStartError;
  const registered = app.functions.get(request.functionId);
  if (!registered) {
    throw new WorkerSystemError(
      `Function code for '${request.functionId}' is not loaded and cannot be invoked.`,
    );
  }
  const { metadata } = registered;
  let { callback } = registered;
  const category = `${metadata.name}.Invocation`;
  // What log hooks see of the invocation; the context exists once the model built the arguments.
  const logContext = { hookData: {} as HookData, invocationContext: undefined as unknown };
  const coreContext: CoreInvocationContext = {
    invocationId: request.invocationId,
    request,
    metadata,
    log(level, logCategory, message) {
      app.log({ invocationId: request.invocationId, category, message, level, logCategory }, logContext);
    },
  };
  coreContext.log(
    'debug',
    'system',
    `Worker ${process.pid} received FunctionInvocationRequest with invocationId ${request.invocationId}`,
  );

  const programmingModel = app.programmingModel;
  if (!programmingModel) throw new WorkerSystemError('No programming model was set by the app.');
  const invocationModel = await programmingModel.getInvocationModel(coreContext);
  const args = await invocationModel.getArguments();
  const invocationContext = args.context;
  logContext.invocationContext = invocationContext;
  const hookData = logContext.hookData;
  let inputs = args.inputs;

  const preContext = {
    get hookData() {
      return hookData;
    },
    get appHookData() {
      return app.appHookData;
    },
    get invocationContext() {
      return invocationContext;
    },
    functionCallback: callback,
    inputs,
  };
  coreContext.state = 'preInvocationHooks';
  try {
    await executeHooks(app, 'preInvocation', preContext, request.invocationId, category);
  } finally {
    coreContext.state = undefined;
  }
  inputs = preContext.inputs;
  callback = preContext.functionCallback;

  const postContext = {
    get hookData() {
      return hookData;
    },
    get appHookData() {
      return app.appHookData;
    },
    get invocationContext() {
      return invocationContext;
    },
    inputs,
    result: null as unknown,
    error: null as unknown,
  };
  coreContext.state = 'invocation';
  try {
    postContext.result = await invocationModel.invokeFunction(invocationContext, inputs, callback);
  } catch (err) {
    postContext.error = err;
  } finally {
    coreContext.state = undefined;
  }

  coreContext.state = 'postInvocationHooks';
  try {
    await executeHooks(app, 'postInvocation', postContext, request.invocationId, category);
  } finally {
    coreContext.state = undefined;
  }
  if (postContext.error instanceof Error) throw postContext.error;

  return invocationModel.getResponse(invocationContext, postContext.result);
}
