import { pipeline } from 'node:stream';
import {
  createdFrom,
  CreateFailed,
  currentAttachment,
  UNKNOWN_OUTCOME_STATUSES,
  type CreatedAttachment,
} from '../attachments/create.js';
import { findAttachment, foundIn } from '../attachments/lookups.js';
import {
  UPLOAD_ID_PROPERTY,
  carriedProperties,
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
import type {
  ByteRange,
  MediaStore,
  MediaUpload,
  OpenedMedia,
  StoredAttachment,
  StoredMedia,
  WriteTarget,
} from './store.js';

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

  async create(
    upload: MediaUpload,
    record: UploadRecord,
    target: WriteTarget = { mode: 'create' },
  ): Promise<StoredAttachment> {
    const measure = () => {
      const measurement = upload.measurement();
      if (measurement) Object.assign(record, measurement);
    };
    // An upsert looks first: what it finds is what it would replace, and an unknown outcome over an
    // attachment that was there is not a create to undo (see WriteTarget).
    const replacing =
      target.mode === 'replace'
        ? target.current
        : target.mode === 'upsert'
          ? await currentAttachment(this.#cosmos, record)
          : undefined;
    const bytes = { id: record.id, contentType: record.contentType, body: upload.body };
    const options = { partitionKey: record.partitionKey, sessionToken: upload.sessionToken };
    let reply: CosmosReply;
    try {
      reply =
        target.mode === 'replace'
          ? await this.#cosmos.replaceAttachmentMedia(record.address, bytes, {
              ...options,
              ifMatch: target.current.etag,
            })
          : await this.#cosmos.createAttachmentFromMedia(record.address, bytes, {
              ...options,
              upsert: target.mode === 'upsert',
            });
    } catch (err) {
      measure();
      if (isOutcomeUnknown(err)) throw new CreateFailed('unknown', undefined, { cause: err, replacing });
      throw err;
    }
    measure();
    if (target.mode !== 'create') {
      // A replace keeps the attachment's custom properties (an upsert, like Cosmos DB's, does not);
      // both are marked like a create, but a mark that cannot be written does not undo bytes that
      // replaced others.
      if (reply.status === 200 || (target.mode === 'upsert' && reply.status === 201)) {
        const stored = foundIn(reply, this.#cosmos);
        if (typeof stored.resource._rid === 'string') record.rid = stored.resource._rid;
        const created = { reply, resource: stored.resource, etag: stored.etag };
        const carried = target.mode === 'replace' ? carriedProperties(target.current.resource) : {};
        if (reply.status === 201) return this.#mark(created, record, upload, carried);
        const marked = await this.#mark(created, record, upload, carried).catch(() => created);
        return { ...marked, replaced: replacing };
      }
      const unknown = reply.earlierAttemptUnknown || UNKNOWN_OUTCOME_STATUSES.has(reply.status);
      throw new CreateFailed(unknown ? 'unknown' : 'refused', reply, { replacing });
    }
    // A retry after a 503 that meets 409 may meet its own first attempt: unmarked, as new as this
    // create, holding the very bytes it sent. A marked one is someone's confirmed upload (this create
    // never marked anything yet), however alike its bytes: never this create's to undo.
    const created = await createdFrom(reply, this.#cosmos, async () => {
      const found = await findAttachment(this.#cosmos, record);
      if (!found) return undefined;
      const proved = provedOwnership(found, record);
      if (proved !== undefined) return proved === 'own' ? found : undefined;
      return (await this.#sameBytes(found, record)) ? found : undefined;
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
    carried: Record<string, unknown> = {},
  ): Promise<CreatedAttachment> {
    // Size and SHA-256 go with the mark: downloads derive their ETag from them, and know the size
    // before they open the media.
    const json = JSON.stringify({
      ...carried,
      ...userProperties(created.resource),
      ...upload.properties,
      ...(record.size === undefined ? {} : { size: record.size }),
      ...(record.sha256 === undefined ? {} : { sha256: record.sha256 }),
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

  locate(resource: AttachmentResource): Promise<StoredMedia | undefined> {
    return Promise.resolve(ownManagedMedia(resource));
  }

  async open(media: StoredMedia, range?: ByteRange): Promise<OpenedMedia> {
    if (media.kind !== 'managed') throw new Error('managed media store: not managed media');
    const opened = await this.#cosmos.openMedia(media.link, range);
    if (!opened) throw new BridgeError('NotFound', 'The attachment has no media in Cosmos DB.');
    const contentType = opened.headers['content-type'];
    if (opened.status === 206) {
      // The service cut the range itself: only if it is the one asked for.
      const served = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(opened.headers['content-range'] ?? '');
      if (range && served && Number(served[1]) === range.start && Number(served[2]) === range.end) {
        return { body: opened.body, size: Number(served[3]), range, contentType };
      }
      opened.body.destroy();
      throw new BridgeError(
        'UpstreamBadResponse',
        'Cosmos DB answered a media range that was not asked for.',
      );
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

  /** Managed media is read through the bridge only: no URL reads it without the account key. */
  downloadUrl(): Promise<string | undefined> {
    return Promise.resolve(undefined);
  }

  /** Managed media goes with its attachment: nothing of its own to remove. */
  async remove(): Promise<void> {}

  async close(): Promise<void> {}
}

/**
 * The attachment's managed media link, when it is its own: a media id is the attachment's `_rid`
 * bytes plus one (docs/cosmos-rest.md), so a link naming another attachment's media (which anyone
 * may write into a metadata attachment) is told apart without asking Cosmos DB.
 */
export function ownManagedMedia(resource: AttachmentResource): StoredMedia | undefined {
  const { media, _rid: rid } = resource;
  if (typeof media !== 'string' || typeof rid !== 'string') return undefined;
  const mediaId = /^\/media\/([A-Za-z0-9+=-]+)$/.exec(media)?.[1];
  if (mediaId === undefined) return undefined;
  const ridBytes = Buffer.from(rid, 'base64');
  const mediaBytes = Buffer.from(mediaId.replace(/-/g, '/'), 'base64');
  if (ridBytes.length < 8 || mediaBytes.length <= ridBytes.length) return undefined;
  return mediaBytes.subarray(0, ridBytes.length).equals(ridBytes)
    ? { kind: 'managed', link: media }
    : undefined;
}
