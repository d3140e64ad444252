// `npm run emulator`: the embedded Cosmos DB emulator on its own (for benchmarks, or another app).
import { jsonLineLogger } from '../log.js';
import { readInteger, SettingsError } from '../settings.js';
import { DEMO, seedDemo } from './seed.js';
import { EMULATOR_PORT, httpsLines, startEmulator } from './server.js';

async function main(): Promise<void> {
  const env = process.env;
  const emulator = await startEmulator({
    port: readInteger(env, 'EMULATOR_PORT', EMULATOR_PORT, 0),
    host: env.EMULATOR_HOST?.trim() || '127.0.0.1',
    maxMediaBytes: readInteger(env, 'EMULATOR_MAX_MEDIA_BYTES', Number.MAX_SAFE_INTEGER, 0),
    discardMedia: env.EMULATOR_DISCARD_MEDIA === '1' || env.EMULATOR_DISCARD_MEDIA === 'true',
    honourMediaRanges: env.EMULATOR_MEDIA_RANGES === '1' || env.EMULATOR_MEDIA_RANGES === 'true',
    log: jsonLineLogger(),
  });
  seedDemo(emulator);
  console.log(
    `Cosmos DB emulator listening on ${emulator.url} (database "${DEMO.db}", collection "${DEMO.coll}", document "${DEMO.doc}")`,
  );
  for (const line of httpsLines(emulator)) console.log(line);
  const stop = () => {
    emulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(err instanceof SettingsError ? `Configuration error: ${err.message}` : err);
  process.exit(1);
});
