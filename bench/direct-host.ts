// The bridge served straight from `node:http` through the fetch adapter (src/http/node-adapter.ts):
// one process, no Functions host or library in the way. The benchmark's reference for what the
// bridge's own code costs; the path Azure runs is the local Functions host (src/devhost/main.ts).
import { startDevHost } from '../src/devhost/host.js';
import { jsonLineLogger } from '../src/log.js';
import { tuneRuntime } from '../src/runtime.js';

await tuneRuntime(process.env);
const host = await startDevHost(process.env, { log: jsonLineLogger() });
console.log(`node:http adapter listening on ${host.url}/api`);
process.once('SIGTERM', () => {
  void host.close().finally(() => process.exit(0));
});
