// The app's configuration as the Functions host and Core Tools read it: host.json (route prefix,
// queue options) and local.settings.json (`Values` for the worker's environment, `Host` for the
// port and CORS).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export class HostConfigError extends Error {}

export interface QueuesOptions {
  batchSize: number;
  newBatchThreshold: number;
  maxDequeueCount: number;
  maxPollingIntervalMs: number;
  visibilityTimeoutMs: number;
  messageEncoding: 'base64' | 'none';
}

export interface HostJson {
  /** `extensions.http.routePrefix`; `api` by default, `""` allowed. */
  routePrefix: string;
  queues: QueuesOptions;
}

/** QueuesOptions defaults of Microsoft.Azure.WebJobs.Extensions.Storage.Queues 5.x. */
export const DEFAULT_QUEUES_OPTIONS: QueuesOptions = {
  batchSize: 16,
  newBatchThreshold: 8,
  maxDequeueCount: 5,
  maxPollingIntervalMs: 60_000,
  visibilityTimeoutMs: 0,
  messageEncoding: 'base64',
};

export async function readHostJson(appDir: string): Promise<HostJson> {
  const path = join(appDir, 'host.json');
  const parsed = await readJson(path);
  const extensions = (parsed?.extensions ?? {}) as Record<string, Record<string, unknown> | undefined>;
  const http = extensions.http ?? {};
  const routePrefix =
    http.routePrefix === undefined
      ? 'api'
      : scalar(http.routePrefix, path, 'extensions.http.routePrefix').replace(/^\/+|\/+$/g, '');
  const queues = extensions.queues ?? {};
  const batchSize = integer(queues.batchSize, DEFAULT_QUEUES_OPTIONS.batchSize, path, 'batchSize');
  if (batchSize < 1 || batchSize > 32)
    throw new HostConfigError(`${path}: queues.batchSize must be between 1 and 32.`);
  const encoding = scalar(queues.messageEncoding ?? 'base64', path, 'queues.messageEncoding').toLowerCase();
  if (encoding !== 'base64' && encoding !== 'none') {
    throw new HostConfigError(`${path}: queues.messageEncoding must be "base64" or "none".`);
  }
  return {
    routePrefix,
    queues: {
      batchSize,
      newBatchThreshold: integer(
        queues.newBatchThreshold,
        Math.floor(batchSize / 2),
        path,
        'newBatchThreshold',
      ),
      maxDequeueCount: integer(
        queues.maxDequeueCount,
        DEFAULT_QUEUES_OPTIONS.maxDequeueCount,
        path,
        'maxDequeueCount',
      ),
      maxPollingIntervalMs: duration(
        queues.maxPollingInterval,
        DEFAULT_QUEUES_OPTIONS.maxPollingIntervalMs,
        path,
      ),
      visibilityTimeoutMs: duration(
        queues.visibilityTimeout,
        DEFAULT_QUEUES_OPTIONS.visibilityTimeoutMs,
        path,
      ),
      messageEncoding: encoding,
    },
  };
}

export interface LocalSettings {
  /** `Values`: app settings, which become the worker's environment. */
  values: Record<string, string>;
  /** `Host.LocalHttpPort`. */
  localHttpPort: number | undefined;
  /** `Host.CORS`: comma-separated origins, or `*`. */
  cors: string | undefined;
  /** `Host.CORSCredentials`. */
  corsCredentials: boolean;
}

/** local.settings.json as Core Tools reads it; a missing file is no settings. */
export async function readLocalSettings(appDir: string): Promise<LocalSettings> {
  const path = join(appDir, 'local.settings.json');
  const parsed = await readJson(path);
  const settings: LocalSettings = {
    values: {},
    localHttpPort: undefined,
    cors: undefined,
    corsCredentials: false,
  };
  if (!parsed) return settings;
  if (parsed.IsEncrypted === true)
    throw new HostConfigError(`${path} is encrypted; only plain values are read.`);
  const values = parsed.Values ?? {};
  if (typeof values !== 'object' || values === null || Array.isArray(values)) {
    throw new HostConfigError(`${path}: "Values" must be an object of setting names to strings.`);
  }
  for (const [name, value] of Object.entries(values as Record<string, unknown>)) {
    if (typeof value !== 'string')
      throw new HostConfigError(`${path}: the value of ${name} must be a string.`);
    settings.values[name] = value;
  }
  const host = (parsed.Host ?? {}) as Record<string, unknown>;
  if (host.LocalHttpPort !== undefined) {
    settings.localHttpPort = integer(host.LocalHttpPort, 0, path, 'Host.LocalHttpPort');
  }
  if (host.CORS !== undefined) settings.cors = scalar(host.CORS, path, 'Host.CORS');
  settings.corsCredentials =
    host.CORSCredentials === true || String(host.CORSCredentials).toLowerCase() === 'true';
  return settings;
}

async function readJson(path: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    // Both files may start with a byte order mark, which .NET accepts.
    return JSON.parse(text.replace(/^\uFEFF/, '')) as Record<string, unknown>;
  } catch {
    throw new HostConfigError(`${path} is not valid JSON.`);
  }
}

function integer(value: unknown, fallback: number, path: string, name: string): number {
  if (value === undefined || value === null) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0)
    throw new HostConfigError(`${path}: ${name} must be a whole number.`);
  return number;
}

/** A host.json duration: a .NET TimeSpan string (`[d.]hh:mm:ss[.fffffff]`) or, as the host also takes, milliseconds. */
export function duration(value: unknown, fallback: number, path: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'number') return value;
  const text = scalar(value, path, 'a duration');
  const ms = parseTimeSpan(text);
  if (ms === undefined) throw new HostConfigError(`${path}: "${text}" is not a duration (hh:mm:ss).`);
  return ms;
}

export function parseTimeSpan(text: string): number | undefined {
  const match = /^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$/.exec(text.trim());
  if (!match) return undefined;
  const [, minus, days = '0', hours, minutes, seconds = '0', fraction = '0'] = match;
  const ms =
    ((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60_000 +
    Number(seconds) * 1000 +
    Number(`0.${fraction}`) * 1000;
  return minus ? -ms : ms;
}

/** A setting that must be a string (or a number or boolean, which .NET configuration reads as text). */
function scalar(value: unknown, path: string, name: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new HostConfigError(`${path}: ${name} must be a string.`);
}
