import type {
  BlobServiceClient,
  BlockBlobClient,
  ContainerClient,
  RestError,
  StoragePipelineOptions,
} from '@azure/storage-blob';
import { BridgeError } from '../../http/errors.js';
import { blobStoreError } from '../../media/blob-errors.js';
import type { Settings } from '../../settings.js';
import { parseInfo, type UploadInfo } from './state.js';

/** Info blobs live under this prefix of the uploads container; managed-mode bytes under `data/`. */
const INFO_PREFIX = 'info/';
const DATA_PREFIX = 'data/';
/** The info blob's metadata with its expiry (ms), so the timer lists uploads without reading them. */
const EXPIRES_METADATA = 'expires';
/** Blob metadata naming the upload that wrote a blob (as the blob media store marks its blobs). */
export const UPLOAD_ID_METADATA = 'bridgeuploadid';

/** An info blob as read: its JSON and the version it was read at. */
export interface StoredInfo {
  info: UploadInfo;
  etag: string;
}

/**
 * Upload state and staged bytes in Blob Storage. The uploads container holds one info blob per upload
 * (`info/{id}`, JSON) and, with managed media, its bytes (`data/{id}`); in blob mode the bytes are
 * staged in the media container under the name the attachment will point at, so completing an upload
 * copies nothing. One per app (per settings object): clients are made on first use.
 */
export class UploadStore {
  readonly #settings: Settings;
  readonly #options: StoragePipelineOptions;
  #service: Promise<BlobServiceClient> | undefined;
  #uploads: Promise<ContainerClient> | undefined;
  #media: Promise<ContainerClient> | undefined;

  constructor(settings: Settings) {
    this.#settings = settings;
    this.#options = {
      retryOptions: {
        maxTries: 3,
        retryDelayInMs: 200,
        maxRetryDelayInMs: 2_000,
        tryTimeoutInMs: settings.upstream.timeoutMs,
      },
    };
  }

  async read(id: string): Promise<StoredInfo | undefined> {
    const blob = (await this.uploads()).getBlockBlobClient(INFO_PREFIX + id);
    try {
      // One GET: the body and the version it is at come together.
      const download = await blob.download();
      const chunks: Buffer[] = [];
      for await (const chunk of download.readableStreamBody as AsyncIterable<Buffer>) chunks.push(chunk);
      const info = parseInfo(Buffer.concat(chunks).toString('utf8'));
      return info && info.id === id ? { info, etag: download.etag! } : undefined;
    } catch (err) {
      if (isRestError(err) && err.statusCode === 404) return undefined;
      throw storageError(err, 'Reading upload state');
    }
  }

  /** Writes a new upload's state; fails if one of that id exists (never overwrites). */
  async create(info: UploadInfo): Promise<string> {
    return this.#put(info, { ifNoneMatch: '*' });
  }

  /**
   * Writes an upload's state only at the version read and under the lease held: a request that lost
   * its lock, or read an older version, cannot overwrite what another wrote (409).
   */
  async write(info: UploadInfo, etag: string, leaseId: string | undefined): Promise<string> {
    return this.#put(info, { ifMatch: etag, ...(leaseId ? { leaseId } : {}) });
  }

  async #put(info: UploadInfo, conditions: Record<string, string>): Promise<string> {
    const blob = (await this.uploads()).getBlockBlobClient(INFO_PREFIX + info.id);
    const json = JSON.stringify(info);
    try {
      const reply = await blob.upload(json, Buffer.byteLength(json), {
        conditions,
        metadata: { [EXPIRES_METADATA]: String(info.expiresAt) },
        blobHTTPHeaders: { blobContentType: 'application/json' },
      });
      return reply.etag!;
    } catch (err) {
      if (isRestError(err) && (err.statusCode === 412 || err.statusCode === 409)) {
        throw new BridgeError(
          'Conflict',
          'The upload changed meanwhile (another request wrote to it); ask for its offset again.',
        );
      }
      throw storageError(err, 'Writing upload state');
    }
  }

  /** Removes an upload's state (under the lease, if one is held). */
  async remove(id: string, leaseId?: string): Promise<void> {
    const blob = (await this.uploads()).getBlockBlobClient(INFO_PREFIX + id);
    try {
      await blob.deleteIfExists(leaseId ? { conditions: { leaseId } } : {});
    } catch (err) {
      throw storageError(err, 'Removing upload state');
    }
  }

  /** The info blob, for its lease. */
  async infoBlob(id: string): Promise<BlockBlobClient> {
    return (await this.uploads()).getBlockBlobClient(INFO_PREFIX + id);
  }

  /** Where an upload's bytes are staged. */
  async data(info: Pick<UploadInfo, 'staging' | 'blob'>): Promise<BlockBlobClient> {
    const container = info.staging === 'media' ? await this.media() : await this.uploads();
    return container.getBlockBlobClient(info.blob);
  }

  /** The data blob's name for a new upload staged in the uploads container. */
  static dataName(id: string): string {
    return DATA_PREFIX + id;
  }

  /** Every upload's id and expiry, from the listing alone. */
  async *list(): AsyncGenerator<{ id: string; expiresAt: number }> {
    const container = await this.uploads();
    try {
      for await (const blob of container.listBlobsFlat({ prefix: INFO_PREFIX, includeMetadata: true })) {
        const expiresAt = Number(blob.metadata?.[EXPIRES_METADATA]);
        yield {
          id: blob.name.slice(INFO_PREFIX.length),
          expiresAt: Number.isFinite(expiresAt) ? expiresAt : 0,
        };
      }
    } catch (err) {
      throw storageError(err, 'Listing uploads');
    }
  }

  /**
   * Removes an upload's staged bytes. Uncommitted blocks have no blob to delete: committing an empty
   * list drops them at once (else Azure drops them a week after the last write), then the empty blob
   * goes. A committed blob goes only while it is still this upload's (its metadata says so): in blob
   * mode a completed upload's blob is an attachment's media, marked with that attachment's upload id.
   */
  async removeData(info: Pick<UploadInfo, 'staging' | 'blob' | 'id'>): Promise<void> {
    const blob = await this.data(info);
    try {
      let etag: string | undefined;
      try {
        const properties = await blob.getProperties();
        if (properties.metadata?.[UPLOAD_ID_METADATA] !== info.id) return;
        etag = properties.etag;
      } catch (err) {
        if (!(isRestError(err) && err.statusCode === 404)) throw err;
        const committed = await blob.commitBlockList([], {
          conditions: { ifNoneMatch: '*' },
          metadata: { [UPLOAD_ID_METADATA]: info.id },
        });
        etag = committed.etag;
      }
      await blob.deleteIfExists({ conditions: { ifMatch: etag } });
    } catch (err) {
      // Someone else's blob took the name meanwhile (409/412): it is not this upload's to remove.
      if (isRestError(err) && (err.statusCode === 409 || err.statusCode === 412)) return;
      throw storageError(err, 'Removing staged bytes');
    }
  }

  uploads(): Promise<ContainerClient> {
    this.#uploads ??= this.#container(this.#settings.uploads.container).catch((err: unknown) => {
      this.#uploads = undefined;
      throw err;
    });
    return this.#uploads;
  }

  media(): Promise<ContainerClient> {
    const media = this.#settings.media;
    if (media.store !== 'blob') throw new Error('the media container exists in blob mode only');
    this.#media ??= this.#container(media.container).catch((err: unknown) => {
      this.#media = undefined;
      throw err;
    });
    return this.#media;
  }

  async #container(name: string): Promise<ContainerClient> {
    const client = (await this.#serviceClient()).getContainerClient(name);
    try {
      await client.createIfNotExists();
    } catch (err) {
      // An identity allowed to write blobs but not to create containers: the container must exist.
      if (!(isRestError(err) && err.statusCode === 403)) throw storageError(err, `Opening container ${name}`);
    }
    return client;
  }

  #serviceClient(): Promise<BlobServiceClient> {
    this.#service ??= (async () => {
      const storage = this.#settings.uploads.storage;
      if (!storage) {
        throw new BridgeError(
          'ConfigurationError',
          'Resumable uploads need Blob Storage: set AzureWebJobsStorage to a connection string, or ' +
            'AzureWebJobsStorage__blobServiceUri (or __accountName) with a managed identity.',
        );
      }
      // Loaded on first use, as the blob media store does: deployments that never use it carry nothing.
      const sdk = await import('@azure/storage-blob');
      if (storage.connectionString)
        return sdk.BlobServiceClient.fromConnectionString(storage.connectionString, this.#options);
      const { DefaultAzureCredential } = await import('@azure/identity');
      return new sdk.BlobServiceClient(storage.accountUrl!.href, new DefaultAzureCredential(), this.#options);
    })().catch((err: unknown) => {
      this.#service = undefined;
      throw err;
    });
    return this.#service;
  }
}

const stores = new WeakMap<Settings, UploadStore>();

/** The app's one store (per settings object, which the bridge makes once). */
export function uploadStore(settings: Settings): UploadStore {
  let store = stores.get(settings);
  if (!store) {
    store = new UploadStore(settings);
    stores.set(settings, store);
  }
  return store;
}

/** The SDK's error for an answer from Blob Storage, by shape: the SDK loads lazily. */
export function isRestError(err: unknown): err is RestError {
  return err instanceof Error && err.name === 'RestError';
}

/** A Blob Storage failure as the layer's error; anything else as it is. */
export function storageError(err: unknown, what: string): unknown {
  return isRestError(err) ? blobStoreError(err.statusCode ?? 0, what, err) : err;
}
