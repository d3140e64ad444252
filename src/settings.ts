import { createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { parseContentTypes, type ContentTypeRule } from './policy/content-types.js';
import { parseTargets, type TargetRule } from './policy/targets.js';
import { SettingsError } from './settings-error.js';

/** Read from app settings (environment). Secrets are held as KeyObjects, which never print. */
export interface CosmosSettings {
  endpoint: URL;
  key: KeyObject;
  /** Tried when Cosmos DB refuses `key` (401), and preferred from then on: rotation without downtime. */
  secondaryKey?: KeyObject | undefined;
}

export interface Limits {
  /** Largest accepted part (file) or raw body in bytes; one byte more is a 413. */
  maxPartBytes: number;
  /** Largest request body in bytes, all parts together. */
  maxRequestBytes: number;
  /** Most parts (files and fields together), files and fields in one multipart body. */
  maxParts: number;
  maxFiles: number;
  maxFields: number;
  /** Largest text field (e.g. a `metadata` JSON body), and largest JSON request body. */
  maxFieldBytes: number;
  /** Content types attachments may have; undefined allows any. */
  allowedContentTypes: ContentTypeRule[] | undefined;
}

/** The durable queue clean-up work goes to (see src/recovery/). */
export interface CleanupSettings {
  /** From `AzureWebJobsStorage` (a connection string; `UseDevelopmentStorage=true` is Azurite). */
  connectionString: string | undefined;
  /** From `AzureWebJobsStorage__queueServiceUri` or `__accountName`, used with the app's managed identity. */
  queueServiceUrl: URL | undefined;
  queueName: string;
}

export interface UpstreamSettings {
  /** Bounds upstream connect, response headers and idle response body. */
  timeoutMs: number;
  /** Size of the one keep-alive connection pool to Cosmos DB. */
  connections: number;
  /** Total time retries of a throttled (429, 449, 503) request may take. */
  retryBudgetMs: number;
  /** A part up to this size is kept while it uploads so it can be sent again; a larger one streams once. */
  replayBufferBytes: number;
  /** What all parts in flight may keep together; past it, parts stream once. */
  replayMemoryBytes: number;
  /**
   * A caller must send its body at least this fast (bytes per second, over the time the bridge was
   * waiting for it) once `minRateGraceMs` have passed, or it is answered 408; 0 turns this off.
   */
  minUploadBytesPerSecond: number;
  minRateGraceMs: number;
}

export interface JwtSettings {
  issuer: string;
  audience: string;
  /** From the issuer's OpenID configuration when not set. */
  jwksUri: URL | undefined;
}

export interface AuthSettings {
  /** OIDC bearer tokens for end users; when set, a valid token is required on the upload routes. */
  jwt: JwtSettings | undefined;
  /** Trust the `x-ms-client-principal` header App Service Authentication injects. */
  easyAuth: boolean;
  /** A claim whose value every write's partition key must equal. */
  partitionClaim: string | undefined;
}

/** Where file bytes go: Cosmos DB managed attachments, or Blob Storage with a metadata attachment pointing at them. */
export type MediaSettings =
  | { store: 'cosmos' }
  | {
      store: 'blob';
      /** A storage connection string (account key or SAS; Azurite's development string works). */
      connectionString: string | undefined;
      /** The account URL, used with a managed identity (DefaultAzureCredential) when no connection string is set. */
      accountUrl: URL | undefined;
      container: string;
    };

/**
 * Resumable uploads (tus, src/features/uploads/): their state and bytes wait in Blob Storage, in the
 * media account in blob mode and in the app's own storage account (`AzureWebJobsStorage`) otherwise.
 */
export interface UploadSettings {
  /** Largest upload in bytes (MAX_UPLOAD_BYTES), announced as Tus-Max-Size. */
  maxUploadBytes: number;
  /** Largest PATCH body: the Functions host's own cap (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT). */
  maxPatchBytes: number;
  /** How long an upload lives after its last write (UPLOAD_EXPIRY_SECONDS, at most 7 days). */
  expirySeconds: number;
  /** How long an upload's lock lasts unrenewed (UPLOAD_LOCK_SECONDS, 15 to 60: Blob Storage's lease limits). */
  lockSeconds: number;
  /**
   * How long the final PATCH waits for the attachment before answering that it is being made
   * (UPLOAD_COMPLETION_WAIT_SECONDS, 0 to 200), in ms.
   */
  completionWaitMs: number;
  /** The container holding upload state (and, with managed media, the bytes until completion). */
  container: string;
  /** Where that container is; undefined when the settings name no blob endpoint (the routes then say so). */
  storage: { connectionString: string | undefined; accountUrl: URL | undefined } | undefined;
  /** Keys the hash that records who created an upload (UPLOADS_SECRET, or derived from the Cosmos DB key). */
  ownerKey: KeyObject;
}

/** How media downloads are served (see docs/read-side.md). */
export interface DownloadSettings {
  /**
   * `stream`: the bridge streams the bytes itself. `redirect`: blob media is answered with a 302 to a
   * short-lived read-only SAS for that one blob (MEDIA_STORE=blob only).
   */
  mode: 'stream' | 'redirect';
  /** How long a redirect's SAS is valid. */
  sasTtlSeconds: number;
}

export interface Settings {
  cosmos: CosmosSettings;
  media: MediaSettings;
  uploads: UploadSettings;
  download: DownloadSettings;
  cleanup: CleanupSettings;
  limits: Limits;
  upstream: UpstreamSettings;
  auth: AuthSettings;
  /** `database/collection` patterns callers may write to; undefined allows every collection. */
  allowedTargets: TargetRule[] | undefined;
  /** Standard Webhooks secrets (several during rotation); empty disables the webhook route. */
  webhookSecrets: string[];
  /** The upload page (`GET /api/ui`, src/features/ui/). */
  ui: UiSettings;
}

export interface UiSettings {
  /** UI_ENABLED; when unset, on outside Azure and off in Azure (see `runsInAzure`). */
  enabled: boolean;
}

export type Env = Record<string, string | undefined>;

export const DEFAULTS = {
  blobContainer: 'attachments',
  maxPartBytes: 64 * 1024 * 1024,
  maxRequestBytes: 100 * 1024 * 1024,
  maxParts: 100,
  maxFiles: 50,
  maxFields: 50,
  maxFieldBytes: 256 * 1024,
  upstreamTimeoutMs: 30_000,
  upstreamConnections: 64,
  retryBudgetMs: 15_000,
  replayBufferBytes: 4 * 1024 * 1024,
  replayMemoryBytes: 64 * 1024 * 1024,
  // Kestrel's defaults for MinRequestBodyDataRate.
  minUploadBytesPerSecond: 240,
  minRateGraceMs: 5_000,
  cleanupQueue: 'attachment-cleanup',
  maxUploadBytes: 5 * 1024 * 1024 * 1024,
  functionsBodyLimit: 104_857_600,
  uploadExpirySeconds: 24 * 3600,
  uploadLockSeconds: 30,
  uploadCompletionWaitSeconds: 20,
  uploadsContainer: 'bridge-uploads',
  downloadSasTtlSeconds: 300,
} as const;

/** Azure discards uncommitted blocks a week after the last write to a blob: no upload may wait longer. */
export const MAX_UPLOAD_EXPIRY_SECONDS = 7 * 24 * 3600;

/** The longest a download SAS may live: a user delegation key is valid for at most 7 days. */
const MAX_SAS_TTL_SECONDS = 7 * 24 * 3600;

export { SettingsError };

export function loadSettings(env: Env): Settings {
  const auth = readAuth(env);
  const allowedTargets = present(env.ALLOWED_TARGETS)
    ? parseTargets(env.ALLOWED_TARGETS, 'ALLOWED_TARGETS')
    : undefined;
  if ((auth.jwt || auth.easyAuth) && !allowedTargets) {
    throw new SettingsError(
      'ALLOWED_TARGETS must be set when end users sign in (AUTH_JWT_ISSUER or AUTH_EASY_AUTH): name the ' +
        'database/collection pairs they may write to, or "*/*" to allow every collection on purpose.',
    );
  }
  const cosmos = loadCosmosSettings(env);
  const media = readMedia(env);
  return {
    cosmos,
    media,
    uploads: readUploads(env, media, cosmos),
    download: readDownload(env, media),
    cleanup: readCleanup(env),
    limits: {
      maxPartBytes: readInteger(env, 'MAX_PART_BYTES', DEFAULTS.maxPartBytes, 1),
      maxRequestBytes: readInteger(env, 'MAX_REQUEST_BYTES', DEFAULTS.maxRequestBytes, 1),
      maxParts: readInteger(env, 'MAX_PARTS', DEFAULTS.maxParts, 1),
      maxFiles: readInteger(env, 'MAX_FILES', DEFAULTS.maxFiles, 1),
      maxFields: readInteger(env, 'MAX_FIELDS', DEFAULTS.maxFields, 1),
      maxFieldBytes: readInteger(env, 'MAX_FIELD_BYTES', DEFAULTS.maxFieldBytes, 1),
      allowedContentTypes: present(env.ALLOWED_CONTENT_TYPES)
        ? parseContentTypes(env.ALLOWED_CONTENT_TYPES, 'ALLOWED_CONTENT_TYPES')
        : undefined,
    },
    upstream: {
      timeoutMs: readInteger(env, 'UPSTREAM_TIMEOUT_MS', DEFAULTS.upstreamTimeoutMs, 1),
      connections: readInteger(env, 'UPSTREAM_CONNECTIONS', DEFAULTS.upstreamConnections, 1),
      retryBudgetMs: readInteger(env, 'UPSTREAM_RETRY_BUDGET_MS', DEFAULTS.retryBudgetMs, 0),
      replayBufferBytes: readInteger(env, 'REPLAY_BUFFER_BYTES', DEFAULTS.replayBufferBytes, 0),
      replayMemoryBytes: readInteger(env, 'REPLAY_MEMORY_BYTES', DEFAULTS.replayMemoryBytes, 0),
      minUploadBytesPerSecond: readInteger(
        env,
        'MIN_UPLOAD_BYTES_PER_SECOND',
        DEFAULTS.minUploadBytesPerSecond,
        0,
      ),
      minRateGraceMs: readInteger(env, 'MIN_UPLOAD_RATE_GRACE_MS', DEFAULTS.minRateGraceMs, 0),
    },
    auth,
    allowedTargets,
    webhookSecrets: readWebhookSecrets(env),
    ui: { enabled: present(env.UI_ENABLED) ? readBoolean(env, 'UI_ENABLED') : !runsInAzure(env) },
  };
}

/**
 * Whether the app runs in Azure rather than on a developer's machine, from what the platform sets
 * on every app (sources in docs/ui.md): WEBSITE_INSTANCE_ID on App Service plans (Windows
 * Consumption, Premium, Dedicated), WEBSITE_SITE_NAME on Azure's web apps, CONTAINER_NAME or
 * WEBSITE_POD_NAME on Linux Consumption and Flex Consumption.
 */
export function runsInAzure(env: Env): boolean {
  return ['WEBSITE_INSTANCE_ID', 'WEBSITE_SITE_NAME', 'CONTAINER_NAME', 'WEBSITE_POD_NAME'].some((name) =>
    present(env[name]),
  );
}

/** True when any Cosmos DB setting is present: the dev host starts its emulator only when none is. */
export function hasCosmosSettings(env: Env): boolean {
  return ['COSMOS_CONNECTION_STRING', 'COSMOS_ENDPOINT', 'COSMOS_KEY'].some((name) => present(env[name]));
}

function present(value: string | undefined): value is string {
  return value !== undefined && value.trim() !== '';
}

/** The Cosmos DB account settings alone (tests and tools that talk to the account directly). */
export function loadCosmosSettings(env: Env): CosmosSettings {
  const connectionString = env.COSMOS_CONNECTION_STRING;
  const endpoint = env.COSMOS_ENDPOINT;
  const key = env.COSMOS_KEY;
  const secondaryKey = present(env.COSMOS_KEY_SECONDARY)
    ? parseKey(env.COSMOS_KEY_SECONDARY, 'COSMOS_KEY_SECONDARY')
    : undefined;
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
      secondaryKey,
    };
  }
  if (!present(endpoint) && !present(key)) {
    throw new SettingsError(
      'No Cosmos DB account configured: set COSMOS_CONNECTION_STRING, or COSMOS_ENDPOINT and COSMOS_KEY.',
    );
  }
  if (!present(endpoint)) throw new SettingsError('COSMOS_KEY is set but COSMOS_ENDPOINT is missing.');
  if (!present(key)) throw new SettingsError('COSMOS_ENDPOINT is set but COSMOS_KEY is missing.');
  return {
    endpoint: parseEndpoint(endpoint, 'COSMOS_ENDPOINT'),
    key: parseKey(key, 'COSMOS_KEY'),
    secondaryKey,
  };
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
  const url = parseUrl(value, setting);
  if (url.pathname !== '/' || url.search || url.hash) {
    throw new SettingsError(`${setting} must be the account's origin, without a path or query.`);
  }
  return url;
}

function parseUrl(value: string, setting: string): URL {
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

/** MEDIA_STORE as given (`cosmos` when unset), before it is checked. */
export function mediaStoreName(env: Env): string {
  return env.MEDIA_STORE?.trim().toLowerCase() || 'cosmos';
}

function readMedia(env: Env): MediaSettings {
  const store = mediaStoreName(env);
  const blobSettings = ['BLOB_CONNECTION_STRING', 'BLOB_ACCOUNT_URL', 'BLOB_CONTAINER'].filter((name) =>
    present(env[name]),
  );
  if (store === 'cosmos') {
    if (blobSettings.length > 0) {
      throw new SettingsError(`${blobSettings.join(', ')} need MEDIA_STORE=blob (MEDIA_STORE is cosmos).`);
    }
    return { store };
  }
  if (store !== 'blob') throw new SettingsError('MEDIA_STORE must be cosmos or blob.');
  const connectionString = present(env.BLOB_CONNECTION_STRING)
    ? env.BLOB_CONNECTION_STRING.trim()
    : undefined;
  const accountUrl = present(env.BLOB_ACCOUNT_URL)
    ? parseUrl(env.BLOB_ACCOUNT_URL, 'BLOB_ACCOUNT_URL')
    : undefined;
  if (connectionString && accountUrl) {
    throw new SettingsError(
      'Set either BLOB_CONNECTION_STRING or BLOB_ACCOUNT_URL (managed identity), not both.',
    );
  }
  if (!connectionString && !accountUrl) {
    throw new SettingsError(
      'MEDIA_STORE=blob needs BLOB_CONNECTION_STRING, or BLOB_ACCOUNT_URL with a managed identity.',
    );
  }
  if (
    connectionString &&
    !/(^|;)\s*(BlobEndpoint|AccountName|UseDevelopmentStorage)\s*=/i.test(connectionString)
  ) {
    throw new SettingsError(
      'BLOB_CONNECTION_STRING is not a storage connection string (no AccountName or BlobEndpoint).',
    );
  }
  if (accountUrl) requireSecureUrl(accountUrl, 'BLOB_ACCOUNT_URL');
  const container = env.BLOB_CONTAINER?.trim() || DEFAULTS.blobContainer;
  // Azure's container naming rules: 3-63 characters, lowercase letters, digits and single hyphens.
  if (!/^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$/.test(container)) {
    throw new SettingsError(
      'BLOB_CONTAINER is not a valid container name (3-63 lowercase letters, digits and single hyphens).',
    );
  }
  return { store, connectionString, accountUrl, container };
}

function readUploads(env: Env, media: MediaSettings, cosmos: CosmosSettings): UploadSettings {
  const container = env.UPLOADS_CONTAINER?.trim() || DEFAULTS.uploadsContainer;
  if (!/^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$/.test(container)) {
    throw new SettingsError(
      'UPLOADS_CONTAINER is not a valid container name (3-63 lowercase letters, digits and single hyphens).',
    );
  }
  if (media.store === 'blob' && container === media.container) {
    throw new SettingsError('UPLOADS_CONTAINER must differ from BLOB_CONTAINER.');
  }
  const expirySeconds = readInteger(env, 'UPLOAD_EXPIRY_SECONDS', DEFAULTS.uploadExpirySeconds, 1);
  if (expirySeconds > MAX_UPLOAD_EXPIRY_SECONDS) {
    throw new SettingsError(
      `UPLOAD_EXPIRY_SECONDS must be at most ${MAX_UPLOAD_EXPIRY_SECONDS} (7 days): Azure discards uncommitted blocks after that.`,
    );
  }
  const lockSeconds = readInteger(env, 'UPLOAD_LOCK_SECONDS', DEFAULTS.uploadLockSeconds, 15);
  if (lockSeconds > 60) {
    throw new SettingsError('UPLOAD_LOCK_SECONDS must be 15 to 60: the limits of a Blob Storage lease.');
  }
  const completionWaitSeconds = readInteger(
    env,
    'UPLOAD_COMPLETION_WAIT_SECONDS',
    DEFAULTS.uploadCompletionWaitSeconds,
    0,
  );
  if (completionWaitSeconds > 200) {
    throw new SettingsError(
      'UPLOAD_COMPLETION_WAIT_SECONDS must be at most 200: an HTTP request must end within 230 s.',
    );
  }
  let ownerKey: KeyObject;
  if (present(env.UPLOADS_SECRET)) {
    const secret = env.UPLOADS_SECRET.trim();
    if (!BASE64.test(secret) || Buffer.from(secret, 'base64').length < 16) {
      throw new SettingsError('UPLOADS_SECRET must be base64 of 16 bytes or more.');
    }
    ownerKey = createSecretKey(Buffer.from(secret, 'base64'));
  } else {
    // A key of its own, derived one way from the account key: the stored hashes reveal nothing of it.
    const derived = hkdfSync('sha256', cosmos.key.export(), Buffer.alloc(0), 'bridge upload owner', 32);
    ownerKey = createSecretKey(Buffer.from(derived));
  }
  return {
    maxUploadBytes: readInteger(env, 'MAX_UPLOAD_BYTES', DEFAULTS.maxUploadBytes, 1),
    maxPatchBytes: readInteger(env, 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT', DEFAULTS.functionsBodyLimit, 1),
    expirySeconds,
    lockSeconds,
    completionWaitMs: completionWaitSeconds * 1000,
    container,
    storage: media.store === 'blob' ? media : readAppBlobStorage(env),
    ownerKey,
  };
}

/**
 * The app's own storage account for blobs, as the Functions host reads `AzureWebJobsStorage`: a
 * connection string, or with a managed identity `__blobServiceUri` or `__accountName`. Undefined when
 * only a queue endpoint is named: resumable uploads then answer that they are not configured.
 */
function readAppBlobStorage(env: Env): UploadSettings['storage'] {
  const connectionString = present(env.AzureWebJobsStorage) ? env.AzureWebJobsStorage.trim() : undefined;
  if (connectionString) {
    // A queue-only connection string has no blob endpoint to stage in.
    if (!/(^|;)\s*(BlobEndpoint|AccountName|UseDevelopmentStorage)\s*=/i.test(connectionString))
      return undefined;
    return { connectionString, accountUrl: undefined };
  }
  const serviceUri = env.AzureWebJobsStorage__blobServiceUri;
  if (present(serviceUri)) {
    const url = parseUrl(serviceUri, 'AzureWebJobsStorage__blobServiceUri');
    requireSecureUrl(url, 'AzureWebJobsStorage__blobServiceUri');
    return { connectionString: undefined, accountUrl: url };
  }
  const accountName = env.AzureWebJobsStorage__accountName?.trim();
  if (accountName && /^[a-z0-9]{3,24}$/.test(accountName)) {
    return {
      connectionString: undefined,
      accountUrl: new URL(`https://${accountName}.blob.core.windows.net/`),
    };
  }
  return undefined;
}

function readDownload(env: Env, media: MediaSettings): DownloadSettings {
  const mode = env.DOWNLOAD_MODE?.trim().toLowerCase() || 'stream';
  if (mode !== 'stream' && mode !== 'redirect')
    throw new SettingsError('DOWNLOAD_MODE must be stream or redirect.');
  const sasTtlSeconds = readInteger(env, 'DOWNLOAD_SAS_TTL_SECONDS', DEFAULTS.downloadSasTtlSeconds, 1);
  if (sasTtlSeconds > MAX_SAS_TTL_SECONDS) {
    throw new SettingsError(`DOWNLOAD_SAS_TTL_SECONDS must be at most ${MAX_SAS_TTL_SECONDS} (7 days).`);
  }
  if (mode === 'redirect') {
    if (media.store !== 'blob') {
      throw new SettingsError(
        'DOWNLOAD_MODE=redirect needs MEDIA_STORE=blob: managed media has no SAS to redirect to.',
      );
    }
    // A SAS is signed with the account key (service SAS) or a user delegation key (managed identity).
    if (media.connectionString && !canSignServiceSas(media.connectionString)) {
      throw new SettingsError(
        'DOWNLOAD_MODE=redirect needs BLOB_CONNECTION_STRING with an AccountKey (or BLOB_ACCOUNT_URL with a managed identity) to sign read SAS URLs.',
      );
    }
  }
  return { mode, sasTtlSeconds };
}

function canSignServiceSas(connectionString: string): boolean {
  return /(^|;)\s*(AccountKey\s*=\s*[^;\s]|UseDevelopmentStorage\s*=\s*true)/i.test(connectionString);
}

/**
 * The storage account of the Functions runtime itself (`AzureWebJobsStorage`), as the Functions host
 * reads it: a connection string, or with a managed identity `__queueServiceUri` or `__accountName`.
 */
function readCleanup(env: Env): CleanupSettings {
  const queueName = env.CLEANUP_QUEUE?.trim() || DEFAULTS.cleanupQueue;
  // Azure's queue naming rules: 3-63 characters, lowercase letters, digits and single hyphens.
  if (!/^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$/.test(queueName)) {
    throw new SettingsError(
      'CLEANUP_QUEUE is not a valid queue name (3-63 lowercase letters, digits and single hyphens).',
    );
  }
  const connectionString = present(env.AzureWebJobsStorage) ? env.AzureWebJobsStorage.trim() : undefined;
  if (connectionString) {
    if (!/(^|;)\s*(QueueEndpoint|AccountName|UseDevelopmentStorage)\s*=/i.test(connectionString)) {
      throw new SettingsError('AzureWebJobsStorage is not a storage connection string.');
    }
    return { connectionString, queueServiceUrl: undefined, queueName };
  }
  const serviceUri = env.AzureWebJobsStorage__queueServiceUri;
  const accountName = env.AzureWebJobsStorage__accountName;
  if (present(serviceUri)) {
    const url = parseUrl(serviceUri, 'AzureWebJobsStorage__queueServiceUri');
    requireSecureUrl(url, 'AzureWebJobsStorage__queueServiceUri');
    return { connectionString: undefined, queueServiceUrl: url, queueName };
  }
  if (present(accountName)) {
    if (!/^[a-z0-9]{3,24}$/.test(accountName.trim())) {
      throw new SettingsError('AzureWebJobsStorage__accountName is not a storage account name.');
    }
    return {
      connectionString: undefined,
      queueServiceUrl: new URL(`https://${accountName.trim()}.queue.core.windows.net/`),
      queueName,
    };
  }
  throw new SettingsError(
    'AzureWebJobsStorage is not set: the bridge queues its clean-up work there (set a storage ' +
      'connection string, or AzureWebJobsStorage__accountName with a managed identity).',
  );
}

function readAuth(env: Env): AuthSettings {
  let jwt: JwtSettings | undefined;
  if (present(env.AUTH_JWT_ISSUER)) {
    if (!present(env.AUTH_JWT_AUDIENCE)) {
      throw new SettingsError(
        'AUTH_JWT_AUDIENCE must be set with AUTH_JWT_ISSUER: tokens are checked for both.',
      );
    }
    const issuer = env.AUTH_JWT_ISSUER.trim();
    requireSecureUrl(parseUrl(issuer, 'AUTH_JWT_ISSUER'), 'AUTH_JWT_ISSUER');
    const jwksUri = present(env.AUTH_JWT_JWKS_URI)
      ? parseUrl(env.AUTH_JWT_JWKS_URI, 'AUTH_JWT_JWKS_URI')
      : undefined;
    if (jwksUri) requireSecureUrl(jwksUri, 'AUTH_JWT_JWKS_URI');
    jwt = { issuer, audience: env.AUTH_JWT_AUDIENCE.trim(), jwksUri };
  } else if (present(env.AUTH_JWT_AUDIENCE) || present(env.AUTH_JWT_JWKS_URI)) {
    throw new SettingsError('AUTH_JWT_AUDIENCE and AUTH_JWT_JWKS_URI need AUTH_JWT_ISSUER.');
  }
  const easyAuth = readBoolean(env, 'AUTH_EASY_AUTH');
  const partitionClaim = present(env.AUTH_PARTITION_CLAIM) ? env.AUTH_PARTITION_CLAIM.trim() : undefined;
  if (partitionClaim && !jwt && !easyAuth) {
    throw new SettingsError(
      'AUTH_PARTITION_CLAIM needs end-user sign-in: set AUTH_JWT_ISSUER or AUTH_EASY_AUTH.',
    );
  }
  return { jwt, easyAuth, partitionClaim };
}

/** Keys and tokens must not travel in clear text, except to this machine (tests, local identity servers). */
function requireSecureUrl(url: URL, setting: string): void {
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !loopback) throw new SettingsError(`${setting} must be an https:// URL.`);
}

function readWebhookSecrets(env: Env): string[] {
  if (!present(env.WEBHOOK_SECRET)) return [];
  const secrets = env.WEBHOOK_SECRET.trim().split(/\s+/);
  for (const secret of secrets) {
    const body = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : '';
    if (!BASE64.test(body) || Buffer.from(body, 'base64').length < 16) {
      throw new SettingsError(
        'WEBHOOK_SECRET must hold one or more space-separated secrets of the form whsec_<base64, 16 bytes or more>.',
      );
    }
  }
  return secrets;
}

function readBoolean(env: Env, name: string): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '' || raw === 'false' || raw === '0') return false;
  if (raw === 'true' || raw === '1') return true;
  throw new SettingsError(`${name} must be true or false.`);
}

export function readInteger(env: Env, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (!present(raw)) return fallback;
  const trimmed = raw.trim();
  const value = /^\d+$/.test(trimmed) ? Number(trimmed) : NaN;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new SettingsError(`${name} must be a whole number of at least ${min}.`);
  }
  return value;
}
