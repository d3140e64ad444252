import type { Logger } from '../log.js';
import { seedDemo } from '../emulator/seed.js';
import { EMULATOR_PORT, startEmulator, type Emulator } from '../emulator/server.js';
import { hasCosmosSettings, readInteger, SettingsError, type Env } from '../settings.js';
import { AZURITE_PORT, startAzurite, type Azurite } from './azurite.js';

/** The local stand-ins the dev host starts for services the settings do not name. */
export interface LocalServices {
  /** The settings with the stand-ins' endpoints filled in. */
  env: Env;
  emulator: Emulator | undefined;
  /** Azurite, when the settings name no storage account for the app (or for blob media). */
  azurite: Azurite | undefined;
  close(): Promise<void>;
}

/**
 * No Cosmos DB setting: the embedded emulator, seeded with the demo document. No `AzureWebJobsStorage`
 * (the app's own storage account, where clean-up work is queued), or MEDIA_STORE=blob with no blob
 * setting: Azurite. Settings that name real services are left alone.
 */
export async function startLocalServices(env: Env, log: Logger): Promise<LocalServices> {
  let emulator: Emulator | undefined;
  let azurite: Azurite | undefined;
  const effective: Env = { ...env };
  const close = async () => {
    await emulator?.close();
    await azurite?.close();
  };
  try {
    if (!hasCosmosSettings(env)) {
      const port = readInteger(env, 'EMULATOR_PORT', EMULATOR_PORT, 0);
      // No limit by default: MAX_PART_BYTES is what callers meet. EMULATOR_MAX_MEDIA_BYTES imitates an
      // account that refuses large media (413), to try the bridge's answer to it.
      const maxMediaBytes = readInteger(env, 'EMULATOR_MAX_MEDIA_BYTES', Number.MAX_SAFE_INTEGER, 1);
      emulator = await inUse(
        startEmulator({ port, log, maxMediaBytes }),
        `EMULATOR_PORT ${port}`,
        'COSMOS_CONNECTION_STRING',
      );
      seedDemo(emulator);
      effective.COSMOS_ENDPOINT = emulator.url;
      effective.COSMOS_KEY = emulator.key;
    }
    const wantsBlob = env.MEDIA_STORE?.trim().toLowerCase() === 'blob';
    const needsBlob = wantsBlob && !env.BLOB_CONNECTION_STRING?.trim() && !env.BLOB_ACCOUNT_URL?.trim();
    const needsQueue = ![
      'AzureWebJobsStorage',
      'AzureWebJobsStorage__accountName',
      'AzureWebJobsStorage__queueServiceUri',
    ].some((name) => env[name]?.trim());
    if (needsBlob || needsQueue) {
      const port = readInteger(env, 'AZURITE_PORT', AZURITE_PORT, 0);
      azurite = await inUse(startAzurite(port), `AZURITE_PORT ${port}`, 'AzureWebJobsStorage');
      if (needsBlob) effective.BLOB_CONNECTION_STRING = azurite.connectionString;
      if (needsQueue) effective.AzureWebJobsStorage = azurite.connectionString;
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { env: effective, emulator, azurite, close };
}

/** A port taken by something else is a configuration problem, said as one. */
async function inUse<T>(starting: Promise<T>, what: string, alternative: string): Promise<T> {
  try {
    return await starting;
  } catch (err) {
    const busy = (err as NodeJS.ErrnoException).code === 'EADDRINUSE' || /EADDRINUSE/.test(String(err));
    if (!busy) throw err;
    throw new SettingsError(
      `${what} is in use: choose another port, or set ${alternative} to use a running service.`,
    );
  }
}
