import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type {
  BlobServiceClient,
  ContainerClient,
  RestError,
  StoragePipelineOptions,
} from '@azure/storage-blob';
import type { DocumentAddress } from '../cosmos/client.js';
import type { PartitionKey } from '../cosmos/partition-key.js';
import { BridgeError, UpstreamStatusError, isCallerError } from '../http/errors.js';
import { describeError, type Logger } from '../log.js';
import type { MediaSettings } from '../settings.js';

/** Blocks staged per upload and uploaded side by side: memory per upload stays near their product. */
const BLOCK_BYTES = 4 * 1024 * 1024;
const BLOCKS_IN_FLIGHT = 2;
/** Azure's limit on a blob name. */
const MAX_NAME_CHARS = 1024;
/** Marks a blob with the upload that wrote it, so an upload with an unknown outcome can find its own. */
const UPLOAD_ID = 'bridgeuploadid';

export interface StoredBlob {
  name: string;
  url: string;
}

type BlobSettings = Extract<MediaSettings, { store: 'blob' }>;

/**
 * File bytes in Blob Storage, one block blob per attachment. Uploads stream in staged blocks and never
 * overwrite: a blob that exists already is a 409, so another attachment's media is never replaced.
 */
export class BlobMediaStore {
  readonly #settings: BlobSettings;
  readonly #options: StoragePipelineOptions;
  readonly #log: Logger;
  #container: Promise<ContainerClient> | undefined;

  /** `timeoutMs` bounds each request to Blob Storage, as UPSTREAM_TIMEOUT_MS does for Cosmos DB. */
  constructor(settings: BlobSettings, timeoutMs: number, log: Logger) {
    this.#settings = settings;
    this.#log = log;
    // The SDK retries each request (a staged block, the commit) on its own; short waits keep a caller
    // from hanging for long when storage is down.
    this.#options = {
      retryOptions: { maxTries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 2_000, tryTimeoutInMs: timeoutMs },
    };
  }

  /**
   * Uploads an attachment's bytes as a new blob. Each upload gets a name of its own (see `blobNameFor`),
   * so a blob left behind by a crash never blocks a later upload, and no upload can replace another's
   * media (the commit also refuses to overwrite).
   */
  async put(
    address: DocumentAddress,
    partitionKey: PartitionKey | undefined,
    id: string,
    body: Buffer | Readable,
    contentType: string,
  ): Promise<StoredBlob> {
    const container = await this.#ready();
    const uploadId = randomUUID();
    const name = blobNameFor(address, partitionKey, id, uploadId);
    const blob = container.getBlockBlobClient(name);
    const options = {
      blobHTTPHeaders: { blobContentType: contentType },
      conditions: { ifNoneMatch: '*' },
      metadata: { [UPLOAD_ID]: uploadId },
    };
    try {
      if (Buffer.isBuffer(body))
        await blob.uploadData(body, { ...options, blockSize: BLOCK_BYTES, concurrency: BLOCKS_IN_FLIGHT });
      else await blob.uploadStream(body, BLOCK_BYTES, BLOCKS_IN_FLIGHT, options);
    } catch (err) {
      if (!isRestError(err)) throw err; // the body's own failure (a 413, the caller leaving)
      const status = err.statusCode ?? 0;
      // A commit whose answer was lost is retried by the SDK and then meets its own blob: that is success.
      if ((status === 409 || status === 412) && (await this.#writtenBy(name, uploadId)))
        return stored(name, blob.url);
      const failure = storageError(err, name);
      if (failure.status >= 500) await this.#deleteIfOurs(name, uploadId);
      throw failure;
    }
    return stored(name, blob.url);
  }

  async delete(name: string): Promise<void> {
    const container = await this.#ready();
    try {
      await container.getBlockBlobClient(name).deleteIfExists({ deleteSnapshots: 'include' });
    } catch (err) {
      throw isRestError(err) ? storageError(err, name) : err;
    }
  }

  /** After an upload whose outcome is unknown: the blob goes only if this very upload wrote it. */
  async #deleteIfOurs(name: string, uploadId: string): Promise<void> {
    try {
      if (await this.#writtenBy(name, uploadId))
        await (await this.#ready()).getBlockBlobClient(name).delete();
    } catch (err) {
      this.#log.error('a blob may be left behind after an unknown outcome', {
        blob: name,
        ...describeError(err),
      });
    }
  }

  async #writtenBy(name: string, uploadId: string): Promise<boolean> {
    try {
      const properties = await (await this.#ready()).getBlockBlobClient(name).getProperties();
      return properties.metadata?.[UPLOAD_ID] === uploadId;
    } catch (err) {
      if (isRestError(err) && err.statusCode === 404) return false;
      throw err;
    }
  }

  /** The container, created on first use when it does not exist. */
  #ready(): Promise<ContainerClient> {
    this.#container ??= this.#open().catch((err: unknown) => {
      this.#container = undefined;
      throw isCallerError(err) ? err : isRestError(err) ? storageError(err, this.#settings.container) : err;
    });
    return this.#container;
  }

  async #open(): Promise<ContainerClient> {
    const { connectionString, accountUrl, container } = this.#settings;
    // Loaded on first use: the SDK adds memory that managed-attachment deployments need not carry.
    const sdk = await import('@azure/storage-blob');
    let service: BlobServiceClient;
    if (connectionString) {
      service = sdk.BlobServiceClient.fromConnectionString(connectionString, this.#options);
    } else {
      // Loaded only when used: production without a storage key signs in with the app's identity.
      const { DefaultAzureCredential } = await import('@azure/identity');
      service = new sdk.BlobServiceClient(accountUrl!.href, new DefaultAzureCredential(), this.#options);
    }
    const client = service.getContainerClient(container);
    try {
      await client.createIfNotExists();
    } catch (err) {
      // An identity allowed to write blobs but not to create containers: the container must exist.
      if (!(isRestError(err) && err.statusCode === 403)) throw err;
    }
    return client;
  }
}

/**
 * A blob name for one upload of an attachment: database, collection, partition key, document, the
 * upload's own id and the attachment id, as path segments. The partition key is in it because two
 * documents may share an id in different partitions; the upload id makes every upload's blob its own.
 * Only `%`, `/`, `\` and a trailing `.` are escaped, which keeps names readable and distinct; a name
 * over Azure's limit becomes a hash under `_long/`.
 */
export function blobNameFor(
  address: DocumentAddress,
  partitionKey: PartitionKey | undefined,
  id: string,
  uploadId: string,
): string {
  const key = partitionKey === undefined ? '_' : JSON.stringify(partitionKey);
  const segments = [address.db, address.coll, key, address.doc, uploadId, id];
  const name = segments.map(escapeSegment).join('/');
  if (name.length <= MAX_NAME_CHARS) return name;
  return `_long/${createHash('sha256').update(JSON.stringify(segments)).digest('hex')}`;
}

/** The blob's address for the attachment's `media`: never with a SAS, which would hand storage access to readers. */
function stored(name: string, url: string): StoredBlob {
  const bare = new URL(url);
  bare.search = '';
  return { name, url: bare.href };
}

function escapeSegment(value: string): string {
  return value.replace(
    /[%/\\]|\.$/g,
    (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
}

function storageError(err: RestError, name: string): BridgeError | UpstreamStatusError {
  const status = err.statusCode ?? 0;
  if (status === 409 || status === 412) {
    return new UpstreamStatusError(409, 'Conflict', `A blob for this attachment exists already (${name}).`);
  }
  if (status === 401 || status === 403) {
    return new BridgeError(
      'UpstreamAuthFailed',
      "Blob Storage refused the bridge's credentials; check the blob settings.",
    );
  }
  if (status === 0) return new BridgeError('UpstreamUnreachable', 'Blob Storage could not be reached.');
  return new BridgeError('UpstreamUnavailable', `Blob Storage answered ${status}; retry later.`, {
    'retry-after': '1',
  });
}

/** The SDK's error for an answer from Blob Storage (or a failure to reach it), by shape: the SDK loads lazily. */
function isRestError(err: unknown): err is RestError {
  return err instanceof Error && err.name === 'RestError';
}
