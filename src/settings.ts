import { createSecretKey, type KeyObject } from 'node:crypto';

/** Read from app settings (environment). Secrets are held as KeyObjects, which never print. */
export interface CosmosSettings {
  endpoint: URL;
  key: KeyObject;
}

export interface Settings {
  cosmos: CosmosSettings;
  /** Largest accepted part (file) in bytes; one byte more is a 413. */
  maxPartBytes: number;
  /** Bounds upstream connect, response headers and idle response body. */
  upstreamTimeoutMs: number;
  /** Size of the one keep-alive connection pool to Cosmos DB. */
  upstreamConnections: number;
  /** Most parts (files and fields together), files and fields in one multipart body. */
  maxParts: number;
  maxFiles: number;
  maxFields: number;
  /** Largest text field (e.g. a `metadata` JSON body), and largest JSON request body. */
  maxFieldBytes: number;
}

export type Env = Record<string, string | undefined>;

export const DEFAULTS = {
  maxPartBytes: 64 * 1024 * 1024,
  upstreamTimeoutMs: 30_000,
  upstreamConnections: 64,
  maxParts: 100,
  maxFiles: 50,
  maxFields: 50,
  maxFieldBytes: 256 * 1024,
} as const;

/** A misconfiguration, reported at start. The message names the setting and never holds its value. */
export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

export function loadSettings(env: Env): Settings {
  return {
    cosmos: readCosmos(env),
    maxPartBytes: readInteger(env, 'MAX_PART_BYTES', DEFAULTS.maxPartBytes, 1),
    upstreamTimeoutMs: readInteger(env, 'UPSTREAM_TIMEOUT_MS', DEFAULTS.upstreamTimeoutMs, 1),
    upstreamConnections: readInteger(env, 'UPSTREAM_CONNECTIONS', DEFAULTS.upstreamConnections, 1),
    maxParts: readInteger(env, 'MAX_PARTS', DEFAULTS.maxParts, 1),
    maxFiles: readInteger(env, 'MAX_FILES', DEFAULTS.maxFiles, 1),
    maxFields: readInteger(env, 'MAX_FIELDS', DEFAULTS.maxFields, 1),
    maxFieldBytes: readInteger(env, 'MAX_FIELD_BYTES', DEFAULTS.maxFieldBytes, 1),
  };
}

/** True when any Cosmos DB setting is present: the dev host starts its emulator only when none is. */
export function hasCosmosSettings(env: Env): boolean {
  return ['COSMOS_CONNECTION_STRING', 'COSMOS_ENDPOINT', 'COSMOS_KEY'].some((name) => present(env[name]));
}

function present(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '';
}

function readCosmos(env: Env): CosmosSettings {
  const connectionString = env.COSMOS_CONNECTION_STRING;
  const endpoint = env.COSMOS_ENDPOINT;
  const key = env.COSMOS_KEY;
  if (present(connectionString)) {
    if (present(endpoint) || present(key)) {
      throw new SettingsError(
        'Set either COSMOS_CONNECTION_STRING or COSMOS_ENDPOINT with COSMOS_KEY, not both: the key in use would be ambiguous.',
      );
    }
    const fields = parseConnectionString(connectionString);
    const accountEndpoint = fields.get('accountendpoint');
    const accountKey = fields.get('accountkey');
    if (!present(accountEndpoint)) {
      throw new SettingsError('COSMOS_CONNECTION_STRING has no AccountEndpoint=...; part.');
    }
    if (!present(accountKey)) {
      throw new SettingsError('COSMOS_CONNECTION_STRING has no AccountKey=...; part.');
    }
    return {
      endpoint: parseEndpoint(accountEndpoint, 'COSMOS_CONNECTION_STRING (AccountEndpoint)'),
      key: parseKey(accountKey, 'COSMOS_CONNECTION_STRING (AccountKey)'),
    };
  }
  if (!present(endpoint) && !present(key)) {
    throw new SettingsError(
      'No Cosmos DB account configured: set COSMOS_CONNECTION_STRING, or COSMOS_ENDPOINT and COSMOS_KEY.',
    );
  }
  if (!present(endpoint)) throw new SettingsError('COSMOS_KEY is set but COSMOS_ENDPOINT is missing.');
  if (!present(key)) throw new SettingsError('COSMOS_ENDPOINT is set but COSMOS_KEY is missing.');
  return { endpoint: parseEndpoint(endpoint, 'COSMOS_ENDPOINT'), key: parseKey(key, 'COSMOS_KEY') };
}

/** `AccountEndpoint=https://...:443/;AccountKey=abc==;` as the portal shows it; names are case-insensitive. */
function parseConnectionString(value: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const segment of value.split(';')) {
    const trimmed = segment.trim();
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) {
      throw new SettingsError(
        'COSMOS_CONNECTION_STRING is malformed: expected Name=value pairs separated by ";".',
      );
    }
    fields.set(trimmed.slice(0, eq).trim().toLowerCase(), trimmed.slice(eq + 1).trim());
  }
  return fields;
}

function parseEndpoint(value: string, setting: string): URL {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new SettingsError(`${setting} is not a valid URL.`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new SettingsError(`${setting} must be an http:// or https:// URL.`);
  }
  if (url.username || url.password) throw new SettingsError(`${setting} must not contain credentials.`);
  if (url.pathname !== '/' || url.search || url.hash) {
    throw new SettingsError(`${setting} must be the account's origin, without a path or query.`);
  }
  return url;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function parseKey(value: string, setting: string): KeyObject {
  const trimmed = value.trim();
  if (!BASE64.test(trimmed) || trimmed.length < 16) {
    throw new SettingsError(`${setting} is not a base64 account key.`);
  }
  return createSecretKey(Buffer.from(trimmed, 'base64'));
}

export function readInteger(env: Env, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (!present(raw)) return fallback;
  const trimmed = raw.trim();
  const value = /^\d+$/.test(trimmed) ? Number(trimmed) : NaN;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new SettingsError(`${name} must be a whole number of at least ${min}, got "${trimmed}".`);
  }
  return value;
}
