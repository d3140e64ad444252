// `npm start`: the bridge on http://127.0.0.1:$PORT/api/..., with the embedded emulator unless Cosmos DB settings are given.
import { resolve } from 'node:path';
import { jsonLineLogger } from '../log.js';
import { tuneRuntime } from '../runtime.js';
import { DEFAULTS, SettingsError } from '../settings.js';
import { DEMO } from '../emulator/seed.js';
import { httpsLines } from '../emulator/server.js';
import { startDevHost } from './host.js';
import { readLocalSettings } from './local-settings.js';

async function main(): Promise<void> {
  tuneRuntime();
  // The environment wins over local.settings.json, so one-off overrides need no file edit.
  const env = { ...(await readLocalSettings(resolve('local.settings.json'))), ...process.env };
  const host = await startDevHost(env, { log: jsonLineLogger() });
  const route = `${host.url}/api/dbs/${DEMO.db}/colls/${DEMO.coll}/docs/${DEMO.doc}/attachments`;
  const lines = [
    '',
    `Cosmos attachment bridge listening on ${host.url}/api`,
    host.emulator
      ? `Embedded Cosmos DB emulator on ${host.emulator.url} (database "${DEMO.db}", collection "${DEMO.coll}", document "${DEMO.doc}")`
      : 'Using the Cosmos DB account from the settings.',
    ...(host.emulator ? httpsLines(host.emulator) : []),
    ...(host.azurite
      ? [
          `Media in Blob Storage: Azurite on ${host.azurite.blobEndpoint}, container "${env.BLOB_CONTAINER?.trim() || DEFAULTS.blobContainer}"`,
        ]
      : []),
    host.generatedKey
      ? `Function key (generated; set DEV_FUNCTION_KEY to choose one): ${host.functionKey}`
      : 'Function key: the value of DEV_FUNCTION_KEY',
    '',
    host.emulator ? 'Try it:' : 'Try it (with a document of yours in the URL):',
    `  curl -F "file=@README.md;type=text/markdown" \\`,
    `    -H 'x-ms-documentdb-partitionkey: ["${DEMO.doc}"]' \\`,
    `    -H "x-functions-key: ${host.generatedKey ? host.functionKey : '$DEV_FUNCTION_KEY'}" \\`,
    `    ${route}`,
    '',
    'Ctrl-C stops.',
    '',
  ];
  console.log(lines.join('\n'));

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping...`);
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

main().catch((err: unknown) => {
  if (err instanceof SettingsError) {
    console.error(`Configuration error: ${err.message}`);
  } else {
    console.error(err);
  }
  process.exit(1);
});
