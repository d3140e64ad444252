// A local Functions host running this repository's built app in a process of its own, for tests that
// kill an instance: options come as JSON in argv[2], settings from the environment. Prints its URL
// when it listens; its log lines go to stdout as JSON.
import { fileURLToPath } from 'node:url';
import { startFunctionsHost } from '../../dist/src/functions-host/host.js';

const options = JSON.parse(process.argv[2] ?? '{}');
const host = await startFunctionsHost({
  appDir: fileURLToPath(new URL('../..', import.meta.url)),
  localSettings: false,
  port: 0,
  ...options,
});
console.log(`HOST READY ${host.url}`);
