// Azure Functions entry point (Node.js v4 programming model). It only adapts: the bridge core does the work.
import { app } from '@azure/functions';
import { registerFunctions } from '../src/functions-app.js';
import { tuneRuntime } from '../src/runtime.js';

// Stream request and response bodies instead of buffering them whole (host 4.28+).
app.setup({ enableHttpStream: true });
// Before any function runs: see runtime.ts (the worker awaits the entry module's top-level await).
await tuneRuntime(process.env);
registerFunctions(app, process.env);
