import type { Readable } from 'node:stream';
import type { CosmosReply, DocumentAddress, ReplayableBody } from '../cosmos/client.js';
import type { PartitionKey } from '../cosmos/partition-key.js';
import { BridgeError } from '../http/errors.js';
import type { Measurement } from '../multipart/measure.js';
import type { WritePolicy } from '../policy/write-policy.js';
import { upstreamError } from '../http/cosmos-replies.js';
import { doNowOrQueue, type CleanupContext } from './cleanup.js';
import { createMetadataAttachment, CreateFailed, type CreatedAttachment } from './create.js';
import {
  newUploadId,
  UPLOAD_ID_PROPERTY,
  userProperties,
  type FoundAttachment,
  type UploadRecord,
} from './record.js';

export interface WriterContext extends CleanupContext {
  policy: WritePolicy;
  /** How long a failing request may spend undoing what it did before the rest goes to the queue. */
  cleanupBudgetMs: number;
}

export interface FileUpload {
  id: string;
  contentType: string;
  body: Buffer | Readable | ReplayableBody;
  measured(): Promise<Measurement>;
  measurement(): Measurement | undefined;
  /** Properties to record on the attachment besides id, contentType and media. */
  properties?: Record<string, unknown> | undefined;
}

interface Created {
  record: UploadRecord;
  /** The version this upload made: undone only while it is still at it. */
  etag: string;
  reply: CosmosReply;
}

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

  constructor(context: WriterContext, address: DocumentAddress, sessionToken?: string) {
    this.#context = context;
    this.#address = address;
    this.#sessionToken = sessionToken;
  }

  get created(): readonly Created[] {
    return this.#created;
  }

  /** An attachment from file bytes, where the media store keeps them. */
  async createMedia(
    upload: FileUpload,
    partitionKey: PartitionKey | undefined,
    subject: string,
  ): Promise<CosmosReply> {
    this.#context.policy.contentType(upload.contentType, subject);
    const { media } = this.#context;
    const record = this.#record(upload.id, upload.contentType, partitionKey, media.kind);
    return this.#create(record, subject, () =>
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
      ),
    );
  }

  /** A metadata attachment (one that points at media elsewhere) from validated properties. */
  async createMetadata(
    properties: Record<string, unknown> & { id: string; contentType: string },
    partitionKey: PartitionKey | undefined,
    subject: string,
  ): Promise<CosmosReply> {
    this.#context.policy.contentType(properties.contentType, subject);
    const record = this.#record(properties.id, properties.contentType, partitionKey, 'none');
    return this.#create(record, subject, () =>
      createMetadataAttachment(this.#context.cosmos, record, properties, this.#sessionToken),
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
    const json = JSON.stringify({ ...userProperties(found.resource), [UPLOAD_ID_PROPERTY]: record.uploadId });
    const reply = await this.#context.cosmos.replaceAttachment(this.#address, record.id, json, {
      partitionKey,
      sessionToken: this.#sessionToken,
      ifMatch: found.etag,
    });
    if (reply.status === 404 || reply.status === 412) return undefined;
    if (reply.status !== 200) throw upstreamError(reply, `Attachment "${record.id}"`);
    const adopted = JSON.parse(reply.body) as { _etag?: unknown };
    this.#created.push({ record, etag: String(adopted._etag), reply });
    return reply;
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
    create: () => Promise<CreatedAttachment>,
  ): Promise<CosmosReply> {
    let created: CreatedAttachment;
    try {
      created = await create();
    } catch (err) {
      throw await this.#failed(err, record, subject);
    }
    this.#created.push({ record, etag: created.etag, reply: created.reply });
    return created.reply;
  }

  /** Cleans up after a create that failed, and says what the caller should hear. */
  async #failed(err: unknown, record: UploadRecord, subject: string): Promise<unknown> {
    const budget = this.#context.cleanupBudgetMs;
    if (err instanceof CreateFailed && err.outcome === 'unknown') {
      await doNowOrQueue(this.#context, { kind: 'settle', record, look: 0 }, budget);
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
    for (const { record, etag } of this.#created.splice(0).reverse()) {
      const budget = Math.max(0, deadline - Date.now());
      if (!(await doNowOrQueue(this.#context, { kind: 'undo', record, etag }, budget))) pending += 1;
    }
    return pending;
  }
}

/** The answer for a failed request, saying when some of what it created is still being removed. */
export function withPendingCleanup(err: unknown, pending: number): unknown {
  if (pending === 0 || !(err instanceof Error)) return err;
  err.message += ` The bridge is still removing ${pending} attachment${pending === 1 ? '' : 's'} this request created; sending it again may meet a 409 until then.`;
  return err;
}
