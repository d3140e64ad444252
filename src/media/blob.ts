import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type {
  BlobServiceClient,
  ContainerClient,
  RestError,
  StoragePipelineOptions,
} from '@azure/storage-blob';
import {
  createMetadataAttachment,
  replaceMetadataAttachment,
  upsertMetadataAttachment,
} from '../attachments/create.js';
import {
  carriedProperties,
  provedOwnership,
  UPLOAD_ID_PROPERTY,
  userProperties,
  type AttachmentResource,
  type FoundAttachment,
  type Ownership,
  type UploadRecord,
} from '../attachments/record.js';
import type { CosmosClient, DocumentAddress } from '../cosmos/client.js';
import type { PartitionKey } from '../cosmos/partition-key.js';
import type { MediaSettings } from '../settings.js';
import { blobStoreError, BlobStoreError } from './blob-errors.js';
import { sameMediaType } from '../policy/content-types.js';
import { ManagedMediaStore } from './managed.js';
import { DownloadSigner } from './sas.js';
import type {
  ByteRange,
  DownloadUrlOptions,
  MediaOwner,
  MediaStore,
  MediaUpload,
  OpenedMedia,
  StoredAttachment,
  StoredMedia,
  WriteTarget,
} from './store.js';

/** Blocks staged per upload and uploaded side by side: memory per upload stays near their product. */
const BLOCK_BYTES = 4 * 1024 * 1024;
const BLOCKS_IN_FLIGHT = 2;
/** Azure's limit on a blob name. */
const MAX_NAME_CHARS = 1024;
/** Blob metadata naming the upload that wrote the blob: the proof that removing it is that upload's call. */
const UPLOAD_ID_METADATA = 'bridgeuploadid';

type BlobSettings = Extract<MediaSettings, { store: 'blob' }>;

/**
 * File bytes in Blob Storage, one block blob per upload, and a metadata attachment in Cosmos DB
 * pointing at it (with `size` and `sha256`), marked with the upload id. Blobs are named for their
 * upload and never overwritten; a blob goes only when its own upload removes it, after its attachment
 * is gone, so no attachment ever points at a missing blob. A create that fails leaves its blob for
 * the writer to `remove` (or, after an unknown outcome, to settle with the attachment).
 */
export class BlobMediaStore implements MediaStore {
  readonly kind = 'blob';
  readonly #cosmos: CosmosClient;
  readonly #settings: BlobSettings;
  readonly #options: StoragePipelineOptions;
  /** Managed media left from before the switch to blobs: still read, never written. */
  readonly #managed: ManagedMediaStore;
  #container: Promise<{ container: ContainerClient; signer: DownloadSigner }> | undefined;

  /** `timeoutMs` bounds each request to Blob Storage, as UPSTREAM_TIMEOUT_MS does for Cosmos DB. */
  constructor(cosmos: CosmosClient, settings: BlobSettings, timeoutMs: number) {
    this.#cosmos = cosmos;
    this.#settings = settings;
    this.#managed = new ManagedMediaStore(cosmos, { timeoutMs });
    // The SDK retries each request (a staged block, the commit) on its own; short waits keep a caller
    // from hanging for long when storage is down.
    this.#options = {
      retryOptions: { maxTries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 2_000, tryTimeoutInMs: timeoutMs },
    };
  }

  async create(
    upload: MediaUpload,
    record: UploadRecord,
    target: WriteTarget = { mode: 'create' },
  ): Promise<StoredAttachment> {
    const { body } = upload;
    // Blob uploads stage their blocks from buffers of their own and retry those: a part just streams.
    const bytes = Buffer.isBuffer(body) || body instanceof Readable ? body : body.first;
    record.blob = blobNameFor(record.address, record.partitionKey, record.id, record.uploadId);
    const url = await this.#put(record.blob, record.uploadId, bytes, record.contentType);
    const { size, sha256 } = await upload.measured();
    Object.assign(record, { size, sha256 });
    const properties = {
      id: record.id,
      contentType: record.contentType,
      media: url,
      size,
      sha256,
      ...upload.properties,
    };
    if (target.mode === 'create') {
      return createMetadataAttachment(this.#cosmos, record, properties, upload.sessionToken);
    }
    if (target.mode === 'replace') {
      // New media for the attachment: its custom properties stay.
      const { current } = target;
      const kept = { ...carriedProperties(current.resource), ...properties };
      return replaceMetadataAttachment(this.#cosmos, record, kept, current, upload.sessionToken);
    }
    return upsertMetadataAttachment(this.#cosmos, record, properties, upload.sessionToken);
  }

  holdsSameBytes(found: FoundAttachment, record: UploadRecord): Promise<boolean> {
    const { resource } = found;
    return Promise.resolve(
      record.blob !== undefined &&
        record.size !== undefined &&
        sameMediaType(resource.contentType, record.contentType) &&
        resource.size === record.size &&
        resource.sha256 === record.sha256,
    );
  }

  /** Points the attachment at this upload's own blob (the same bytes): the earlier one's is then unreferenced. */
  async takeOver(found: FoundAttachment, record: UploadRecord) {
    const { resource } = found;
    const { container } = await this.#ready();
    const media = bareUrl(container.getBlockBlobClient(record.blob!).url);
    const json = JSON.stringify({
      ...userProperties(resource),
      media,
      [UPLOAD_ID_PROPERTY]: record.uploadId,
    });
    const reply = await this.#cosmos.replaceAttachment(record.address, record.id, json, {
      partitionKey: record.partitionKey,
      ifMatch: found.etag,
    });
    if (reply.status !== 200) return undefined;
    const taken = JSON.parse(reply.body) as AttachmentResource;
    const previousBlob =
      typeof resource.media === 'string' ? await this.blobNameOf(resource.media) : undefined;
    const previousUpload = resource[UPLOAD_ID_PROPERTY];
    return {
      created: { reply: { ...reply, status: 201 }, resource: taken, etag: String(taken._etag) },
      replaced:
        previousBlob !== undefined && typeof previousUpload === 'string'
          ? { ...record, uploadId: previousUpload, blob: previousBlob }
          : undefined,
    };
  }

  /** A blob-mode attachment is a metadata attachment: its mark (or resource id) decides. */
  prove(found: FoundAttachment, record: UploadRecord): Promise<Ownership> {
    return Promise.resolve(provedOwnership(found, record) ?? 'other');
  }

  async locate(resource: AttachmentResource, owner: MediaOwner): Promise<StoredMedia | undefined> {
    const { media, id } = resource;
    const mark = resource[UPLOAD_ID_PROPERTY];
    if (typeof media !== 'string') return undefined;
    if (media.startsWith('/media/')) return this.#managed.locate(resource);
    const name = await this.blobNameOf(media);
    // Only the blob this attachment's own upload wrote: a metadata attachment anyone made may name
    // any blob of the container, and must not read (or delete) another document's media through it.
    if (name === undefined || typeof mark !== 'string') return undefined;
    if (name !== blobNameFor(owner.address, owner.partitionKey, id, mark)) return undefined;
    return { kind: 'blob', name, uploadId: mark };
  }

  async open(media: StoredMedia, range?: ByteRange): Promise<OpenedMedia> {
    if (media.kind === 'managed') return this.#managed.open(media, range);
    const { container } = await this.#ready();
    const blob = container.getBlockBlobClient(media.name);
    try {
      const offset = range?.start ?? 0;
      const count = range ? range.end - range.start + 1 : undefined;
      const download = await blob.download(offset, count);
      const total = Number(/\/(\d+)$/.exec(download.contentRange ?? '')?.[1] ?? download.contentLength);
      return {
        body: download.readableStreamBody as Readable,
        size: total,
        range,
        contentType: download.contentType,
      };
    } catch (err) {
      throw isRestError(err) ? blobStoreError(err.statusCode ?? 0, `Reading blob ${media.name}`, err) : err;
    }
  }

  async downloadUrl(media: StoredMedia, options: DownloadUrlOptions): Promise<string | undefined> {
    if (media.kind !== 'blob') return undefined;
    const { container, signer } = await this.#ready();
    try {
      return await signer.url(container.getBlobClient(media.name), options);
    } catch (err) {
      throw isRestError(err) ? blobStoreError(err.statusCode ?? 0, 'Signing a download URL', err) : err;
    }
  }

  /** The name of a blob in this store's container from a URL in an attachment's `media`; undefined for any other URL. */
  async blobNameOf(mediaUrl: string): Promise<string | undefined> {
    const { container } = await this.#ready();
    const base = `${container.url.replace(/\/+$/, '')}/`;
    if (!mediaUrl.startsWith(base)) return undefined;
    try {
      return decodeURIComponent(new URL(mediaUrl).pathname.slice(new URL(base).pathname.length));
    } catch {
      return undefined;
    }
  }

  async remove(record: UploadRecord): Promise<void> {
    if (record.blob !== undefined) await this.#removeIfWrittenBy(record.blob, record.uploadId);
  }

  /** Deletes a blob only if the given upload wrote it (its metadata says so), and only that version. */
  async #removeIfWrittenBy(name: string, uploadId: string): Promise<void> {
    const blob = (await this.#ready()).container.getBlockBlobClient(name);
    try {
      const properties = await blob.getProperties();
      if (properties.metadata?.[UPLOAD_ID_METADATA] !== uploadId) return;
      await blob.deleteIfExists({ deleteSnapshots: 'include', conditions: { ifMatch: properties.etag } });
    } catch (err) {
      if (isRestError(err) && err.statusCode === 404) return;
      throw isRestError(err) ? blobStoreError(err.statusCode ?? 0, `Removing blob ${name}`, err) : err;
    }
  }

  async close(): Promise<void> {}

  /**
   * Uploads bytes as a new blob named for this upload. The commit refuses to overwrite: a blob that
   * exists is another upload's (BLOB_EXISTS), unless it is this upload's own, whose commit answer was
   * lost and retried by the SDK.
   */
  async #put(name: string, uploadId: string, body: Buffer | Readable, contentType: string): Promise<string> {
    const { container } = await this.#ready();
    const blob = container.getBlockBlobClient(name);
    const options = {
      blobHTTPHeaders: { blobContentType: contentType },
      conditions: { ifNoneMatch: '*' },
      metadata: { [UPLOAD_ID_METADATA]: uploadId },
    };
    try {
      if (Buffer.isBuffer(body))
        await blob.uploadData(body, { ...options, blockSize: BLOCK_BYTES, concurrency: BLOCKS_IN_FLIGHT });
      else await blob.uploadStream(body, BLOCK_BYTES, BLOCKS_IN_FLIGHT, options);
    } catch (err) {
      if (!isRestError(err)) throw err; // the body's own failure (a 413, the caller leaving)
      const status = err.statusCode ?? 0;
      if ((status === 409 || status === 412) && (await this.#writtenBy(name, uploadId)))
        return bareUrl(blob.url);
      // A commit that failed may have gone through unanswered: removing the blob is the writer's
      // clean-up (`remove`), as for any create that failed.
      throw blobStoreError(status, `Writing blob ${name}`, err);
    }
    return bareUrl(blob.url);
  }

  async #writtenBy(name: string, uploadId: string): Promise<boolean> {
    try {
      const properties = await (await this.#ready()).container.getBlockBlobClient(name).getProperties();
      return properties.metadata?.[UPLOAD_ID_METADATA] === uploadId;
    } catch (err) {
      if (isRestError(err) && err.statusCode === 404) return false;
      throw err;
    }
  }

  /** The container, created on first use when it does not exist, and the signer of its download URLs. */
  #ready(): Promise<{ container: ContainerClient; signer: DownloadSigner }> {
    this.#container ??= this.#open().catch((err: unknown) => {
      this.#container = undefined;
      throw isRestError(err) ? blobStoreError(err.statusCode ?? 0, 'Opening the container', err) : err;
    });
    return this.#container;
  }

  async #open(): Promise<{ container: ContainerClient; signer: DownloadSigner }> {
    const { connectionString, accountUrl, container } = this.#settings;
    // Loaded on first use: the SDK adds memory that managed-attachment deployments need not carry.
    const sdk = await import('@azure/storage-blob');
    let service: BlobServiceClient;
    if (connectionString) {
      service = sdk.BlobServiceClient.fromConnectionString(connectionString, this.#options);
    } else {
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
    return { container: client, signer: new DownloadSigner(service, !connectionString) };
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
function bareUrl(url: string): string {
  const bare = new URL(url);
  bare.search = '';
  return bare.href;
}

function escapeSegment(value: string): string {
  return value.replace(
    /[%/\\]|\.$/g,
    (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`,
  );
}

/** The SDK's error for an answer from Blob Storage (or a failure to reach it), by shape: the SDK loads lazily. */
function isRestError(err: unknown): err is RestError {
  return err instanceof Error && err.name === 'RestError';
}

export { BlobStoreError };
