import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { createBridge, type Bridge } from '../bridge.js';
import { closeServer, listen } from '../http/listening.js';
import type { FetchHandler } from '../http/fetch-handler.js';
import { nodeHandler } from '../http/node-adapter.js';
import { describeError, silentLogger, type Logger } from '../log.js';
import { loadSettings, readInteger, SettingsError, type Env } from '../settings.js';
import type { Emulator } from '../emulator/server.js';
import { startCleanupPoller, type CleanupPoller } from './cleanup-poller.js';
import { startLocalServices } from './local-services.js';
import type { Azurite } from './azurite.js';

export const DEFAULT_PORT = 7071;
/** Request headers past this size are refused with 431, as Node's default and Kestrel's front end do. */
export const MAX_HEADER_BYTES = 16 * 1024;

export interface DevHost {
  /** e.g. `http://127.0.0.1:7071` */
  readonly url: string;
  readonly functionKey: string;
  /** True when the key was generated (DEV_FUNCTION_KEY unset) and so should be shown. */
  readonly generatedKey: boolean;
  /** The embedded emulator, when no Cosmos DB settings were given. */
  readonly emulator: Emulator | undefined;
  /** Azurite, when the settings name no storage account. */
  readonly azurite: Azurite | undefined;
  readonly bridge: Bridge;
  close(): Promise<void>;
}

export interface DevHostOptions {
  log?: Logger;
  /** Sees every answer (a clone) as it is sent; tests use it to check no answer carries a secret. */
  observe?: (request: Request, response: Response) => void;
}

/**
 * Serves the bridge on `node:http` as the Functions host would (same routes, `api` prefix, function
 * keys), starting local stand-ins (the Cosmos DB emulator, Azurite) for services the settings leave out.
 */
export async function startDevHost(
  env: Env,
  { log = silentLogger, observe }: DevHostOptions = {},
): Promise<DevHost> {
  const port = readInteger(env, 'PORT', DEFAULT_PORT, 0);
  const host = env.HOST?.trim() || '127.0.0.1';
  const services = await startLocalServices(env, log);
  const effectiveEnv = services.env;

  let bridge: Bridge | undefined;
  let server: Server | undefined;
  let poller: CleanupPoller | undefined;
  try {
    const settings = loadSettings(effectiveEnv);
    const configuredKey = env.DEV_FUNCTION_KEY?.trim();
    const functionKey = configuredKey || randomBytes(24).toString('base64url');
    bridge = createBridge({ settings, functionKey, log });
    if (settings.cleanup.connectionString) poller = await startCleanupPoller(bridge, log);
    server = createServer(
      { maxHeaderSize: MAX_HEADER_BYTES },
      nodeHandler(observed(bridge.fetch, observe), (err) =>
        log.error('dev host: unexpected failure', describeError(err)),
      ),
    );
    server.on('clientError', answerClientError);
    await listen(server, port, host).catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'EADDRINUSE'
        ? new SettingsError(`PORT ${port} is in use: set PORT to a free port.`)
        : err;
    });
    const address = server.address() as AddressInfo;
    const openServer = server;
    const openBridge = bridge;
    return {
      url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`,
      functionKey,
      generatedKey: !configuredKey,
      emulator: services.emulator,
      azurite: services.azurite,
      bridge,
      async close() {
        await closeServer(openServer);
        await poller?.close();
        await openBridge.close();
        await services.close();
      },
    };
  } catch (err) {
    server?.close();
    await poller?.close();
    await bridge?.close();
    await services.close();
    throw err;
  }
}

/** Requests Node cannot parse still get a JSON error, like every other refusal. */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  const body = JSON.stringify(
    tooLarge
      ? { code: 'HeadersTooLarge', message: `The request headers are larger than ${MAX_HEADER_BYTES} bytes.` }
      : { code: 'BadRequest', message: 'The request is not valid HTTP.' },
  );
  socket.end(
    `HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

function observed(handler: FetchHandler, observe: DevHostOptions['observe']): FetchHandler {
  if (!observe) return handler;
  return async (request) => {
    const response = await handler(request);
    observe(request, response.clone());
    return response;
  };
}
