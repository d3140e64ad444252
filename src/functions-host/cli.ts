// `node dist/src/functions-host/cli.js [appDir] [--port N]`: runs an app folder in the local Functions
// host as `func start` would (local.settings.json read from the folder), and prints its functions
// and keys. Keys come from FUNCTIONS_HOST_FUNCTION_KEY / FUNCTIONS_HOST_MASTER_KEY (environment or
// local.settings.json Values) or are generated.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { HostConfigError } from './config.js';
import { startFunctionsHost, type FunctionsHost } from './host.js';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { port: { type: 'string' }, host: { type: 'string' }, quiet: { type: 'boolean' } },
  });
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new HostConfigError(`--port must be a port number, not "${values.port}".`);
  }
  const host = await startFunctionsHost({
    appDir: resolve(positionals[0] ?? '.'),
    port,
    host: values.host,
    log: !values.quiet,
  });
  console.log(describe(host));
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping...`);
    host.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

function describe(host: FunctionsHost): string {
  const lines = ['', `Functions host listening on ${host.url}`, ''];
  if (host.loadError) lines.push(`The app failed to load: ${host.loadError}`, '');
  lines.push(host.functions.length > 0 ? 'Functions:' : 'No functions.');
  for (const fn of host.functions) {
    if (fn.url) {
      lines.push(
        `  ${fn.name}: [${fn.methods?.length ? fn.methods.join(',') : 'ALL'}] ${fn.url} (authLevel ${fn.authLevel})`,
      );
    } else {
      const detail = fn.queueName
        ? ` queue "${fn.queueName}"`
        : fn.schedule
          ? ` schedule "${fn.schedule}"`
          : '';
      lines.push(`  ${fn.name}: ${fn.trigger}${detail}`);
    }
  }
  lines.push(
    '',
    `Function key${process.env.FUNCTIONS_HOST_FUNCTION_KEY ? ' (FUNCTIONS_HOST_FUNCTION_KEY)' : ' (generated)'}: ${host.functionKey}`,
    `Master key${process.env.FUNCTIONS_HOST_MASTER_KEY ? ' (FUNCTIONS_HOST_MASTER_KEY)' : ' (generated)'}: ${host.masterKey}`,
    '',
    'Ctrl-C stops.',
    '',
  );
  return lines.join('\n');
}

main().catch((err: unknown) => {
  if (err instanceof HostConfigError) console.error(`Configuration error: ${err.message}`);
  else console.error(err);
  process.exit(1);
});
