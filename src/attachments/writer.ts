import type { Readable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import type { CosmosReply, DocumentAddress, ReplayableBody } from '../cosmos/client.js';
import type { PartitionKey } from '../cosmos/partition-key.js';
import { BridgeError } from '../http/errors.js';
import type { MediaOwner, StoredMedia, WriteTarget } from '../media/store.js';
import type { Measurement } from '../multipart/measure.js';
import type { AccessPolicy } from '../policy/access-policy.js';
import { upstreamError } from '../http/cosmos-replies.js';
import { describeError } from '../log.js';
import type { CleanupTask } from '../recovery/tasks.js';
import { doNowOrQueue, type CleanupContext } from './cleanup.js';
import {
  createMetadataAttachment,
  CreateFailed,
  upsertMetadataAttachment,
  type CreatedAttachment,
} from './create.js';
import {
  newUploadId,
  UPLOAD_ID_PROPERTY,
  userProperties,
  type AttachmentResource,
  type FoundAttachment,
  type UploadRecord,
} from './record.js';
import { findAttachment } from './lookups.js';

export interface WriterContext extends CleanupContext {
  policy: AccessPolicy;
  /** How long a failing request may spend undoing what it did before the rest goes to the queue. */
  cleanupBudgetMs: number;
}

export interface FileUpload {
  id: string;
  contentType: string;
  body: Buffer | Readable | ReplayableBody;
  measured(): Promise<Measurement>;
  measurement(): Measurement | undefined;
  /**
   * Reads what of the file the upstream did not take (it answered before reading it all), for its
   * size and hash: undefined when the file failed.
   */
  finish(): Promise<Measurement | undefined>;
  /** Properties to record on the attachment besides id, contentType and media. */
  properties?: Record<string, unknown> | undefined;
}

interface Created {
  record: UploadRecord;
  /** The version this upload made: undone only while it is still at it. */
  etag: string;
  reply: CosmosReply;
  /**
   * An attachment an earlier attempt of this upload stored (the same content under the taken id), to
   * be taken over when the request succeeds (`commit`); until then it is left exactly as it was.
   */
  sameAs?: {
    found: FoundAttachment;
    takeOver: () => Promise<TakenOver | undefined>;
    /**
     * The take-over was sent but not confirmed (its answer lost, or a refusal after a retry of it): the
     * attachment may now carry this request's mark, and nobody else would ever remove it.
     */
    tried?: boolean;
  };
  /** Once taken over: its user properties as found, which a rollback puts back. */
  previous?: Record<string, unknown>;
}

type TakenOver = { created: CreatedAttachment; replaced?: UploadRecord | undefined };

/**
 * Creates the attachments of one request, each under an upload id of its own that Cosmos DB stores
 * with it, and remembers them so that a failure anywhere can undo them all: all or nothing. A create
 * whose outcome is unknown is looked up at once and, if it is provably its own, removed; later looks
 * go to the durable queue. Undoing that fails for now goes there too, so any instance finishes it.
 */
export class AttachmentWriter {
  readonly #context: WriterContext;
  readonly #address: DocumentAddress;
  readonly #sessionToken: string | undefined;
  readonly #created: Created[] = [];
  /** Every write of the request, in order (creates are in `#created` too; replaces by upsert only here). */
  readonly #writes: { reply: CosmosReply }[] = [];

  constructor(context: WriterContext, address: DocumentAddress, sessionToken?: string) {
    this.#context = context;
    this.#address = address;
    this.#sessionToken = sessionToken;
  }

  get created(): readonly Created[] {
    return this.#created;
  }

  /**
   * An attachment from file bytes, where the media store keeps them. With `upsert`, the attachment of
   * that id is replaced if there is one (Cosmos DB's 200); a replaced attachment is not undone by a
   * rollback (the version it replaced is gone), and its blob, if the bridge wrote it, goes.
   */
  async createMedia(
    upload: FileUpload,
    partitionKey: PartitionKey | undefined,
    subject: string,
    upsert = false,
  ): Promise<CosmosReply> {
    return this.#writeMedia(upload, partitionKey, subject, upsert ? { mode: 'upsert' } : { mode: 'create' });
  }

  /**
   * New media for the attachment at version `current` (its id), in the media store; its custom
   * properties stay. When it held a blob the bridge wrote, that blob goes once the attachment no
   * longer points at it, so the attachment never points at a missing blob.
   */
  async replaceMedia(
    upload: FileUpload,
    partitionKey: PartitionKey | undefined,
    current: FoundAttachment,
    subject: string,
  ): Promise<CosmosReply> {
    return this.#writeMedia(upload, partitionKey, subject, { mode: 'replace', current });
  }

  async #writeMedia(
    upload: FileUpload,
    partitionKey: PartitionKey | undefined,
    subject: string,
    target: WriteTarget,
  ): Promise<CosmosReply> {
    this.#context.policy.contentType(upload.contentType, subject);
    const { media } = this.#context;
    const record = this.#record(upload.id, upload.contentType, partitionKey, media.kind);
    // Only a plain create can meet its id taken by an earlier attempt of the same upload.
    const sameContent: SameContent | undefined =
      target.mode === 'create'
        ? {
            holds: async (found) => {
              if (record.size === undefined) Object.assign(record, await upload.finish());
              return media.holdsSameBytes(found, record);
            },
            takeOver: (found) => media.takeOver(found, record),
          }
        : undefined;
    return this.#create(record, subject, sameContent, () =>
      media.create(
        {
          contentType: upload.contentType,
          body: upload.body,
          measured: () => upload.measured(),
          measurement: () => upload.measurement(),
          properties: upload.properties,
          sessionToken: this.#sessionToken,
        },
        record,
        target,
      ),
    );
  }

  /**
   * A metadata attachment (one that points at media elsewhere) from validated properties; with
   * `upsert`, replacing the one of that id if there is one (as createMedia does). Without it, a taken
   * id holding exactly these properties is taken over (a retry of the same request), unless
   * `takeOver` is false (the webhook route recognises its redeliveries itself).
   */
  async createMetadata(
    properties: Record<string, unknown> & { id: string; contentType: string },
    partitionKey: PartitionKey | undefined,
    subject: string,
    { upsert = false, takeOver = true }: { upsert?: boolean; takeOver?: boolean } = {},
  ): Promise<CosmosReply> {
    this.#context.policy.contentType(properties.contentType, subject);
    const record = this.#record(properties.id, properties.contentType, partitionKey, 'none');
    const { cosmos } = this.#context;
    const sameContent: SameContent | undefined =
      takeOver && !upsert
        ? {
            holds: (found) => {
              const { [UPLOAD_ID_PROPERTY]: _mark, ...theirs } = userProperties(found.resource);
              return Promise.resolve(isDeepStrictEqual(theirs, { ...properties }));
            },
            takeOver: async (found) => {
              const created = await this.#markAsOwn(found, record);
              return created && { created };
            },
          }
        : undefined;
    return this.#create(record, subject, sameContent, () =>
      upsert
        ? upsertMetadataAttachment(cosmos, record, properties, this.#sessionToken)
        : createMetadataAttachment(cosmos, record, properties, this.#sessionToken),
    );
  }

  /**
   * Takes over an existing attachment as this request's own (a webhook redelivery answering with the
   * first delivery's attachment): marks it with a new upload id, only while it is at the version
   * found, so that no clean-up of the earlier request can remove what this one confirms. Undefined
   * when it changed or went meanwhile (look again).
   */
  async adopt(
    found: FoundAttachment,
    partitionKey: PartitionKey | undefined,
  ): Promise<CosmosReply | undefined> {
    const contentType = typeof found.resource.contentType === 'string' ? found.resource.contentType : '';
    const record = this.#record(found.resource.id, contentType, partitionKey, 'none');
    const created = await this.#markAsOwn(found, record);
    if (!created) return undefined;
    this.#created.push({
      record,
      etag: created.etag,
      reply: created.reply,
      previous: userProperties(found.resource),
    });
    return created.reply;
  }

  /** Marks an attachment as the record's, only while it is at the version found. */
  async #markAsOwn(found: FoundAttachment, record: UploadRecord): Promise<CreatedAttachment | undefined> {
    const json = JSON.stringify({ ...userProperties(found.resource), [UPLOAD_ID_PROPERTY]: record.uploadId });
    const reply = await this.#context.cosmos.replaceAttachment(this.#address, record.id, json, {
      partitionKey: record.partitionKey,
      sessionToken: this.#sessionToken,
      ifMatch: found.etag,
    });
    if (reply.status === 404 || reply.status === 412) return undefined;
    if (reply.status !== 200) throw upstreamError(reply, `Attachment "${record.id}"`);
    const resource = JSON.parse(reply.body) as AttachmentResource;
    return { reply: { ...reply, status: 201 }, resource, etag: String(resource._etag) };
  }

  #record(
    id: string,
    contentType: string,
    partitionKey: PartitionKey | undefined,
    media: UploadRecord['media'],
  ): UploadRecord {
    return {
      address: this.#address,
      partitionKey,
      id,
      uploadId: newUploadId(),
      contentType,
      startedAt: this.#context.cosmos.serviceNow(),
      media,
    };
  }

  async #create(
    record: UploadRecord,
    subject: string,
    sameContent: SameContent | undefined,
    create: () => Promise<CreatedAttachment>,
  ): Promise<CosmosReply> {
    let created: CreatedAttachment;
    try {
      created = await create();
    } catch (err) {
      const found = sameContent && takenId(err) ? await this.#sameTaken(record, sameContent) : undefined;
      if (!found) throw await this.#failed(err, record, subject);
      const reply = { ...(err as CreateFailed).reply!, status: 201, body: JSON.stringify(found.resource) };
      const entry: Created = {
        record,
        etag: found.etag,
        reply,
        sameAs: { found, takeOver: () => sameContent!.takeOver(found) },
      };
      this.#created.push(entry);
      this.#writes.push(entry);
      return reply;
    }
    if (created.reply.status === 200) {
      // It replaced an attachment: what was there is gone, so a rollback leaves this version be.
      this.#writes.push({ reply: created.reply });
      if (created.replaced) {
        const previous = await this.#storedRecord(created.replaced, record.partitionKey);
        if (previous) {
          await doNowOrQueue(
            this.#context,
            { kind: 'remove-media', record: previous },
            this.#context.cleanupBudgetMs,
          );
        }
      }
    } else {
      const entry: Created = { record, etag: created.etag, reply: created.reply };
      this.#created.push(entry);
      this.#writes.push(entry);
    }
    return created.reply;
  }

  /**
   * The id was taken: a retry of this very upload may find what an earlier attempt stored (its answer
   * lost, or its outcome unknown). The attachment there, when it holds the same content; else undefined
   * (and the create stays a 409).
   */
  async #sameTaken(record: UploadRecord, sameContent: SameContent): Promise<FoundAttachment | undefined> {
    try {
      const found = await findAttachment(this.#context.cosmos, record);
      return found && (await sameContent.holds(found)) ? found : undefined;
    } catch (err) {
      this.#context.log.warn('could not tell whether a taken id holds the same content', {
        ...this.#address,
        attachment: record.id,
        ...describeError(err),
      });
      return undefined;
    }
  }

  /**
   * A record of the blob an attachment's own upload wrote, for removing it once nothing points at it;
   * undefined when its media is anything else (managed media goes with its attachment; the bridge
   * never removes what it did not write).
   */
  async #storedRecord(
    found: FoundAttachment,
    partitionKey: PartitionKey | undefined,
  ): Promise<UploadRecord | undefined> {
    let stored;
    try {
      stored = await this.#context.media.locate(found.resource, { address: this.#address, partitionKey });
    } catch (err) {
      this.#context.log.error('could not tell where a replaced attachment kept its media; it is left', {
        ...this.#address,
        attachment: found.resource.id,
        ...describeError(err),
      });
      return undefined;
    }
    return storedBlobRecord(stored, found.resource, { address: this.#address, partitionKey });
  }

  /** Cleans up after a create that failed, and says what the caller should hear. */
  async #failed(err: unknown, record: UploadRecord, subject: string): Promise<unknown> {
    const budget = this.#context.cleanupBudgetMs;
    if (err instanceof CreateFailed && err.outcome === 'unknown' && err.replacing) {
      // The attachment holds what it held or the new media, whole either way: never undone like a
      // create. What may have been replaced, or stored for nothing, goes once that is known.
      const previous = await this.#storedRecord(err.replacing, record.partitionKey);
      if (record.media === 'blob' || previous) {
        await doNowOrQueue(
          this.#context,
          { kind: 'settle-replace', record, previous, etag: err.replacing.etag, look: 0 },
          budget,
        );
      }
      return err.reply ? upstreamError(err.reply, subject) : (err.cause ?? err);
    }
    if (err instanceof CreateFailed && err.outcome === 'unknown') {
      // One look now; if Cosmos DB cannot be asked, the queue looks again in a second rather than
      // the caller waiting for it.
      await doNowOrQueue(this.#context, { kind: 'settle', record, look: 0 }, 0);
      if (err.reply?.status === 409) {
        // A retry met an attachment that may be its own first attempt, and that could not be told.
        return new BridgeError(
          'UpstreamUnavailable',
          `${subject}: Cosmos DB could not confirm whether it was stored; send the request again.`,
          { 'retry-after': '1' },
        );
      }
      return err.reply ? upstreamError(err.reply, subject) : (err.cause ?? err);
    }
    // Nothing was stored in Cosmos DB; bytes stored elsewhere go now.
    if (record.media === 'blob' && record.blob !== undefined) {
      await doNowOrQueue(this.#context, { kind: 'remove-media', record }, budget);
    }
    return err instanceof CreateFailed ? upstreamError(err.reply!, subject) : err;
  }

  /**
   * Undoes what this request created, newest first. What cannot be undone now is queued: the number
   * of such attachments is returned, for the answer to say so.
   */
  async rollBack(): Promise<number> {
    const deadline = Date.now() + this.#context.cleanupBudgetMs;
    let pending = 0;
    for (const { record, etag, sameAs, previous } of this.#created.splice(0).reverse()) {
      const budget = Math.max(0, deadline - Date.now());
      // Not taken over: the attachment is as it was; only this attempt's own bytes (a blob) go. A
      // take-over that was sent but not confirmed is settled like a create of unknown outcome: undone
      // if the attachment carries this request's mark, kept if another request's, and if unmarked
      // judged as any unmarked attachment is (never one anybody was answered 201 for).
      const task: CleanupTask | undefined = sameAs
        ? sameAs.tried
          ? { kind: 'settle', record, look: 0 }
          : record.media === 'blob'
            ? { kind: 'remove-media', record }
            : undefined
        : previous
          ? { kind: 'restore', record, etag, previous }
          : { kind: 'undo', record, etag };
      if (task && !(await doNowOrQueue(this.#context, task, budget))) pending += 1;
    }
    return pending;
  }

  /**
   * The request succeeded: attachments an earlier attempt of it stored become its own now, then media
   * they no longer point at goes (the queue finishes what fails now). Call before answering, and answer
   * with the replies it returns, in the order of the writes; when an attachment changed meanwhile, it
   * throws (roll back then).
   */
  async commit(): Promise<CosmosReply[]> {
    const replaced: UploadRecord[] = [];
    for (const entry of this.#created) {
      if (!entry.sameAs) continue;
      const { found, takeOver } = entry.sameAs;
      entry.sameAs.tried = true;
      const taken = await takeOver();
      if (!taken) {
        throw new BridgeError(
          'UpstreamUnavailable',
          `Attachment "${entry.record.id}" changed while it was being stored; send the request again.`,
          { 'retry-after': '1' },
        );
      }
      Object.assign(entry, {
        etag: taken.created.etag,
        reply: taken.created.reply,
        previous: userProperties(found.resource),
      });
      delete entry.sameAs;
      if (taken.replaced) replaced.push(taken.replaced);
    }
    for (const record of replaced) await doNowOrQueue(this.#context, { kind: 'remove-media', record }, 0);
    return this.#writes.map((write) => write.reply);
  }
}

/** How to tell a taken id holds this upload's content, and to take it over. */
interface SameContent {
  holds(found: FoundAttachment): Promise<boolean>;
  takeOver(found: FoundAttachment): Promise<TakenOver | undefined>;
}

/** A create refused because its id is taken (409, nothing stored). */
function takenId(err: unknown): boolean {
  return err instanceof CreateFailed && err.outcome === 'refused' && err.reply?.status === 409;
}

/**
 * A record of the blob an attachment's own upload wrote (as `MediaStore.locate` found it), for removing
 * it once nothing points at it; undefined for any other media.
 */
export function storedBlobRecord(
  stored: StoredMedia | undefined,
  resource: AttachmentResource,
  owner: MediaOwner,
): UploadRecord | undefined {
  if (stored?.kind !== 'blob') return undefined;
  return {
    address: owner.address,
    partitionKey: owner.partitionKey,
    id: resource.id,
    uploadId: stored.uploadId,
    contentType: typeof resource.contentType === 'string' ? resource.contentType : '',
    startedAt: 0,
    media: 'blob',
    blob: stored.name,
  };
}

/** The answer for a failed request, saying when some of what it created is still being removed. */
export function withPendingCleanup(err: unknown, pending: number): unknown {
  if (pending === 0 || !(err instanceof Error)) return err;
  err.message += ` The bridge is still removing ${pending} attachment${pending === 1 ? '' : 's'} this request created; sending it again may meet a 409 until then.`;
  return err;
}
