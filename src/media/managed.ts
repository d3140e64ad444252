import { pipeline } from 'node:stream';
import { createdFrom, CreateFailed, type CreatedAttachment } from '../attachments/create.js';
import { findAttachment } from '../attachments/lookups.js';
import {
  UPLOAD_ID_PROPERTY,
  provedOwnership,
  userProperties,
  type AttachmentResource,
  type FoundAttachment,
  type Ownership,
  type UploadRecord,
} from '../attachments/record.js';
import type { CosmosClient, CosmosReply } from '../cosmos/client.js';
import { CosmosError, isOutcomeUnknown } from '../cosmos/errors.js';
import { BridgeError } from '../http/errors.js';
import { sameMediaType } from '../policy/content-types.js';
import { sliceRange } from './slice.js';
import type { ByteRange, MediaStore, MediaUpload, OpenedMedia } from './store.js';

/** Cosmos DB stamps `_ts` in whole seconds and its `Date` header too: two seconds of slack. */
const CLOCK_SLACK_MS = 2_000;
/** Attempts at writing the ownership mark after a create, before the create is given up. */
const MARK_ATTEMPTS = 3;

export interface ManagedStoreOptions {
  /** UPSTREAM_TIMEOUT_MS: bounds how long a create may take to be marked. */
  timeoutMs: number;
}

/**
 * Managed attachments: the bytes live inside Cosmos DB, created with one raw-media POST (`Slug`), read
 * from `GET /media/{id}`. A raw-media create carries no properties, so right after its 201 the
 * attachment is marked with the upload id (a replace that keeps `id`, `contentType` and `media`),
 * before anyone is told it exists. An attachment that is still unmarked a grace period after it was
 * made was therefore confirmed to nobody (see SECURITY.md).
 */
export class ManagedMediaStore implements MediaStore {
  readonly kind = 'managed';
  readonly #cosmos: CosmosClient;
  readonly #timeoutMs: number;

  constructor(cosmos: CosmosClient, options: ManagedStoreOptions) {
    this.#cosmos = cosmos;
    this.#timeoutMs = options.timeoutMs;
  }

  /**
   * How long an unmarked attachment is left alone: a create's own marking ends within one upstream
   * timeout of its 201 (which itself comes within one of the `_ts`), plus slack for the clocks.
   */
  get graceMs(): number {
    return 2 * this.#timeoutMs + 2 * CLOCK_SLACK_MS;
  }

  async create(upload: MediaUpload, record: UploadRecord): Promise<CreatedAttachment> {
    const measure = () => {
      const measurement = upload.measurement();
      if (measurement) Object.assign(record, measurement);
    };
    let reply: CosmosReply;
    try {
      reply = await this.#cosmos.createAttachmentFromMedia(
        record.address,
        { id: record.id, contentType: record.contentType, body: upload.body },
        { partitionKey: record.partitionKey, sessionToken: upload.sessionToken },
      );
    } catch (err) {
      measure();
      if (isOutcomeUnknown(err)) throw new CreateFailed('unknown', undefined, { cause: err });
      throw err;
    }
    measure();
    // A retry after a 503 that meets 409 may meet its own first attempt: unmarked, as new as this
    // create, holding the very bytes it sent.
    const created = await createdFrom(reply, this.#cosmos, async () => {
      const found = await findAttachment(this.#cosmos, record);
      return found && (await this.#sameBytes(found, record)) ? found : undefined;
    });
    if (typeof created.resource._rid === 'string') record.rid = created.resource._rid;
    return this.#mark(created, record, upload);
  }

  /**
   * Writes the upload id onto the attachment it just created. Only while it is still the version
   * this create made (If-Match): if anything else happened to it, the create is given up, and the
   * caller settles the record (the `_rid` proves the attachment is its own, marked or not).
   */
  async #mark(
    created: CreatedAttachment,
    record: UploadRecord,
    upload: MediaUpload,
  ): Promise<CreatedAttachment> {
    const json = JSON.stringify({
      ...userProperties(created.resource),
      ...upload.properties,
      // What it holds, as blob-mode attachments say it: downloads and retries compare against it.
      ...(record.size === undefined ? {} : { size: record.size, sha256: record.sha256 }),
      [UPLOAD_ID_PROPERTY]: record.uploadId,
    });
    const deadline = Date.now() + this.#timeoutMs;
    let etag = created.etag;
    let cause: unknown;
    for (let attempt = 0; attempt < MARK_ATTEMPTS && Date.now() < deadline; attempt++) {
      try {
        const reply = await this.#cosmos.replaceAttachment(record.address, record.id, json, {
          partitionKey: record.partitionKey,
          sessionToken: upload.sessionToken,
          ifMatch: etag,
        });
        if (reply.status === 200) {
          const resource = JSON.parse(reply.body) as AttachmentResource;
          return {
            reply: {
              ...created.reply,
              body: reply.body,
              headers: { ...created.reply.headers, etag: String(resource._etag) },
            },
            resource,
            etag: String(resource._etag),
          };
        }
        cause = new Error(`Cosmos DB answered ${reply.status} to the mark`);
        if (reply.status !== 412 && reply.status < 500 && reply.status !== 408 && reply.status !== 429) break;
      } catch (err) {
        // Whatever became of the mark, the attachment exists: never give up on it without settling it.
        if (!(err instanceof CosmosError)) throw err;
        cause = err;
      }
      // The mark may have been written after all, or the attachment changed: see what is there.
      let found: FoundAttachment | undefined;
      try {
        found = await findAttachment(this.#cosmos, record);
      } catch (err) {
        cause = err;
        continue;
      }
      if (!found || provedOwnership(found, record) !== 'own') break;
      if (found.resource[UPLOAD_ID_PROPERTY] === record.uploadId) {
        return {
          reply: { ...created.reply, body: JSON.stringify(found.resource) },
          resource: found.resource,
          etag: found.etag,
        };
      }
      etag = found.etag;
    }
    throw new CreateFailed('unknown', undefined, { cause });
  }

  async holdsSameBytes(found: FoundAttachment, record: UploadRecord): Promise<boolean> {
    const { resource } = found;
    if (record.size === undefined || !sameMediaType(resource.contentType, record.contentType)) return false;
    // Marked ones say what they hold; an unmarked one (a create whose request never heard back) is read.
    const holds =
      typeof resource.sha256 === 'string'
        ? { size: resource.size, sha256: resource.sha256 }
        : typeof resource.media === 'string' && resource[UPLOAD_ID_PROPERTY] === undefined
          ? await this.#cosmos.measureMedia(resource.media)
          : undefined;
    return holds?.size === record.size && holds.sha256 === record.sha256;
  }

  async takeOver(found: FoundAttachment, record: UploadRecord) {
    const json = JSON.stringify({
      ...userProperties(found.resource),
      size: record.size,
      sha256: record.sha256,
      [UPLOAD_ID_PROPERTY]: record.uploadId,
    });
    const reply = await this.#cosmos.replaceAttachment(record.address, record.id, json, {
      partitionKey: record.partitionKey,
      ifMatch: found.etag,
    });
    if (reply.status !== 200) return undefined;
    const resource = JSON.parse(reply.body) as AttachmentResource;
    if (typeof resource._rid === 'string') record.rid = resource._rid;
    return { created: { reply: { ...reply, status: 201 }, resource, etag: String(resource._etag) } };
  }

  async prove(found: FoundAttachment, record: UploadRecord): Promise<Ownership> {
    const proved = provedOwnership(found, record);
    if (proved !== undefined) return proved;
    if (record.media !== 'managed') return 'other';
    // Unmarked, and this upload never learned its resource id: give any create the time to mark it.
    const stampedAt = Number(found.resource._ts) * 1000;
    if (!Number.isFinite(stampedAt)) return 'other';
    if (found.serviceNow - stampedAt < this.graceMs) return 'undecided';
    return (await this.#sameBytes(found, record)) ? 'own' : 'other';
  }

  /** As new as the record's create, of its content type, holding the very bytes it sent. */
  async #sameBytes(found: FoundAttachment, record: UploadRecord): Promise<boolean> {
    const { resource } = found;
    if (Number(resource._ts) * 1000 < record.startedAt - CLOCK_SLACK_MS) return false;
    if (!sameMediaType(resource.contentType, record.contentType)) return false;
    if (record.size === undefined || record.sha256 === undefined || typeof resource.media !== 'string')
      return false;
    const stored = await this.#cosmos.measureMedia(resource.media);
    return stored?.size === record.size && stored.sha256 === record.sha256;
  }

  async open(resource: AttachmentResource, range?: ByteRange): Promise<OpenedMedia> {
    const opened =
      typeof resource.media === 'string' ? await this.#cosmos.openMedia(resource.media, range) : undefined;
    if (!opened) throw new BridgeError('NotFound', 'The attachment has no media in Cosmos DB.');
    const contentType = opened.headers['content-type'];
    if (opened.status === 206) {
      const total = Number(/\/(\d+)$/.exec(opened.headers['content-range'] ?? '')?.[1]);
      return { body: opened.body, size: total, range, contentType };
    }
    if (opened.status !== 200) {
      opened.body.destroy();
      throw new BridgeError('UpstreamBadResponse', `Cosmos DB answered ${opened.status} to the media read.`);
    }
    const size = Number(opened.headers['content-length']);
    if (!range) return { body: opened.body, size, contentType };
    // The service sent it all: the bridge cuts the range out itself.
    const slice = sliceRange(range);
    pipeline(opened.body, slice, () => {});
    return { body: slice, size, range, contentType };
  }

  /** Managed media goes with its attachment: nothing of its own to remove. */
  async remove(): Promise<void> {}

  async close(): Promise<void> {}
}
