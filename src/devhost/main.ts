// `npm start`: the app in the local Functions host (the real @azure/functions streaming path, as in
// Azure) on http://127.0.0.1:$PORT/api/..., with the embedded emulator unless Cosmos DB settings are
// given, and Azurite unless a storage account is.
import { resolve } from 'node:path';
import { jsonLineLogger } from '../log.js';
import { RECOMMENDED_NODE_OPTIONS, tuneRuntime } from '../runtime.js';
import { DEFAULTS, readInteger, SettingsError } from '../settings.js';
import { DEMO } from '../emulator/seed.js';
import { startFunctionsHost } from '../functions-host/host.js';
import { HostConfigError } from '../functions-host/config.js';
import { startLocalServices } from './local-services.js';
import { readLocalSettings } from './local-settings.js';

export const DEFAULT_PORT = 7071;

async function main(): Promise<void> {
  // The host forwards every request body too: the same heap tuning as the app (see runtime.ts).
  // The host process never hashes uploads itself: no media store to prepare for.
  await tuneRuntime({});
  const appDir = resolve('.');
  // The environment wins over local.settings.json, so one-off overrides need no file edit.
  const env = { ...(await readLocalSettings(resolve(appDir, 'local.settings.json'))), ...process.env };
  const services = await startLocalServices(env, jsonLineLogger());
  // PORT, else local.settings.json Host.LocalHttpPort, else 7071 (the host decides the last two).
  const port = env.PORT?.trim() ? readInteger(env, 'PORT', DEFAULT_PORT, 0) : undefined;
  const configuredKey = env.DEV_FUNCTION_KEY?.trim() || env.FUNCTIONS_HOST_FUNCTION_KEY?.trim();
  let host;
  try {
    host = await startFunctionsHost({
      appDir,
      env: services.env,
      port,
      host: env.HOST?.trim() || '127.0.0.1',
      functionKey: configuredKey,
      // The worker runs with the flags the README recommends for Azure (NODE_OPTIONS there).
      workerNodeArgs: [...RECOMMENDED_NODE_OPTIONS],
    });
  } catch (err) {
    await services.close();
    throw err;
  }
  const route = `${host.url}/${host.routePrefix ? `${host.routePrefix}/` : ''}dbs/${DEMO.db}/colls/${DEMO.coll}/docs/${DEMO.doc}/attachments`;
  const lines = [
    '',
    `Cosmos attachment bridge listening on ${host.url}/${host.routePrefix}`,
    `  (the local Functions host: ${host.functions.length} functions${host.loadError ? `; the app failed to load: ${host.loadError}` : ''})`,
    services.emulator
      ? `Embedded Cosmos DB emulator on ${services.emulator.url} (database "${DEMO.db}", collection "${DEMO.coll}", document "${DEMO.doc}")`
      : 'Using the Cosmos DB account from the settings.',
    ...(services.emulator?.httpsUrl
      ? [
          `  For Cosmos DB SDKs: ${services.emulator.httpsUrl}, with NODE_EXTRA_CA_CERTS=${services.emulator.certPath}`,
        ]
      : []),
    ...(services.azurite
      ? [
          `Azurite (Blob and Queue) on ${services.azurite.blobEndpoint}${env.MEDIA_STORE?.trim().toLowerCase() === 'blob' ? `, media in container "${env.BLOB_CONTAINER?.trim() || DEFAULTS.blobContainer}"` : ''}`,
        ]
      : []),
    configuredKey
      ? 'Function key: the value of DEV_FUNCTION_KEY'
      : `Function key (generated; set DEV_FUNCTION_KEY to choose one): ${host.functionKey}`,
    '',
    services.emulator ? 'Try it:' : 'Try it (with a document of yours in the URL):',
    `  curl -F "file=@README.md;type=text/markdown" \\`,
    `    -H 'x-ms-documentdb-partitionkey: ["${DEMO.doc}"]' \\`,
    `    -H "x-functions-key: ${configuredKey ? '$DEV_FUNCTION_KEY' : host.functionKey}" \\`,
    `    ${route}`,
    ...(/^(false|0)$/i.test(env.UI_ENABLED?.trim() ?? '')
      ? []
      : [
          '',
          `Or in a browser (paste the function key): ${host.url}/${host.routePrefix ? `${host.routePrefix}/` : ''}ui?db=${DEMO.db}&coll=${DEMO.coll}&doc=${DEMO.doc}`,
        ]),
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
    host
      .close()
      .then(() => services.close())
      .then(
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
  if (err instanceof SettingsError || err instanceof HostConfigError) {
    console.error(`Configuration error: ${err.message}`);
  } else {
    console.error(err);
  }
  process.exit(1);
});
