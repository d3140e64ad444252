import { Readable } from 'node:stream';
import type {
  CallOptions,
  CosmosClient,
  CosmosReply,
  DocumentAddress,
  ReplayableBody,
} from '../cosmos/client.js';
import { BridgeError } from '../http/errors.js';
import { describeError, type Logger } from '../log.js';
import type { BlobMediaStore } from '../media/blob-store.js';
import type { KeepMemory, Measurement } from '../multipart/measure.js';
import type { WritePolicy } from '../policy/write-policy.js';
import type { Settings } from '../settings.js';
import { upstreamError } from './cosmos-replies.js';
import {
  UNKNOWN_OUTCOME_STATUSES,
  deleteBlob,
  findOwn,
  isUnknownOutcomeError,
  settleUnknownOutcome,
  type SentCreate,
} from './unknown-outcome.js';

/** A part's size and SHA-256: known once it was all taken in. */
export interface MeasuredPart {
  measured(): Promise<Measurement>;
  readonly measurement: Measurement | undefined;
}

export interface RouteContext {
  cosmos: CosmosClient;
  settings: Settings;
  log: Logger;
  policy: WritePolicy;
  /** Set when MEDIA_STORE=blob: file bytes go to Blob Storage, and Cosmos DB gets a metadata attachment. */
  blobs: BlobMediaStore | undefined;
  /** Runs a task later, after the answer (looking again for a create that was stored late). */
  later: (task: () => Promise<void>, delayMs: number) => void;
  /** What parts in flight may keep, together, to send a throttled create again. */
  replayMemory: KeepMemory;
}

interface Created {
  id: string;
  reply: CosmosReply;
  options: CallOptions;
  /** The blob holding the media, in blob mode: undone with the attachment. */
  blob?: string | undefined;
}

/**
 * Creates the attachments of one request and remembers them, so that a failure anywhere can undo
 * them all. A create whose outcome is unknown (the connection broke, Cosmos DB timed out) is looked up
 * and undone too, now and once more later, so a failed request leaves nothing behind.
 */
export class AttachmentWriter {
  readonly #context: RouteContext;
  readonly #address: DocumentAddress;
  readonly #created: Created[] = [];

  constructor(context: RouteContext, address: DocumentAddress) {
    this.#context = context;
    this.#address = address;
  }

  get created(): readonly Created[] {
    return this.#created;
  }

  /**
   * An attachment from file bytes: a managed attachment (raw media to Cosmos DB), or in blob mode a
   * new blob plus a metadata attachment pointing at it with its `size` and `sha256`. Cosmos DB's
   * error status is thrown as the caller's error.
   */
  async createMedia(
    upload: { id: string; contentType: string; body: Readable | ReplayableBody },
    meter: MeasuredPart,
    options: CallOptions,
    subject: string,
  ): Promise<CosmosReply> {
    try {
      return await this.#createMediaOnce(upload, meter, options, subject);
    } finally {
      // No more attempts: what was kept to send the part again goes back to the shared memory.
      if (!(upload.body instanceof Readable)) upload.body.release();
    }
  }

  async #createMediaOnce(
    upload: { id: string; contentType: string; body: Readable | ReplayableBody },
    meter: MeasuredPart,
    options: CallOptions,
    subject: string,
  ): Promise<CosmosReply> {
    this.#context.policy.contentType(upload.contentType, subject);
    const { blobs, cosmos } = this.#context;
    if (!blobs) {
      const sent = {
        id: upload.id,
        options,
        contentType: upload.contentType,
        sentBytes: () => meter.measurement,
      };
      return this.#create(sent, subject, () =>
        cosmos.createAttachmentFromMedia(this.#address, upload, options),
      );
    }
    // Blob uploads stage their blocks from buffers of their own: the part just streams.
    const stream = upload.body instanceof Readable ? upload.body : upload.body.first;
    const blob = await blobs.put(this.#address, options.partitionKey, upload.id, stream, upload.contentType);
    let settledElsewhere = false;
    try {
      const { size, sha256 } = await meter.measured();
      const metadata = { id: upload.id, contentType: upload.contentType, media: blob.url, size, sha256 };
      const sent = {
        id: upload.id,
        options,
        contentType: upload.contentType,
        media: blob.url,
        blob: blob.name,
      };
      return await this.#create(
        sent,
        subject,
        () => cosmos.createAttachmentFromJson(this.#address, JSON.stringify(metadata), options),
        () => {
          settledElsewhere = true;
        },
      );
    } catch (err) {
      // After an unknown outcome the blob's fate is settled with the attachment's; otherwise it goes now.
      if (!settledElsewhere) await deleteBlob(this.#context, this.#address, blob.name);
      throw err;
    }
  }

  /** A metadata attachment from its JSON body (already validated). */
  async createMetadata(
    metadata: { id: string; contentType: string; media: string; json: string },
    options: CallOptions,
    subject: string,
  ): Promise<CosmosReply> {
    this.#context.policy.contentType(metadata.contentType, subject);
    const sent = { id: metadata.id, options, contentType: metadata.contentType, media: metadata.media };
    return this.#create(sent, subject, () =>
      this.#context.cosmos.createAttachmentFromJson(this.#address, metadata.json, options),
    );
  }

  async #create(
    create: Omit<SentCreate, 'startedSeconds'>,
    subject: string,
    send: () => Promise<CosmosReply>,
    onUnknownOutcome: () => void = () => {},
  ): Promise<CosmosReply> {
    // Cosmos DB stamps `_ts` in whole seconds; one second of slack covers the rounding.
    const sent: SentCreate = { ...create, startedSeconds: Math.floor(Date.now() / 1000) - 1 };
    let reply: CosmosReply;
    try {
      reply = await send();
    } catch (err) {
      if (isUnknownOutcomeError(err)) {
        onUnknownOutcome();
        await settleUnknownOutcome(this.#context, this.#address, sent);
      }
      throw err;
    }
    // A retry after a 503 that meets a 409 may be meeting its own first attempt, stored after all.
    if (reply.status === 409 && reply.earlierAttemptUnknown) {
      let own: CosmosReply | undefined;
      try {
        own = await findOwn(this.#context, this.#address, sent);
      } catch (err) {
        // Whose the attachment is cannot be told now: settle it like any unknown outcome.
        this.#context.log.warn('could not tell whose attachment a retry met', {
          ...this.#address,
          attachment: sent.id,
          ...describeError(err),
        });
        onUnknownOutcome();
        await settleUnknownOutcome(this.#context, this.#address, sent);
        throw new BridgeError(
          'UpstreamUnavailable',
          `${subject}: Cosmos DB could not confirm whether it was stored; send the request again.`,
          { 'retry-after': '1' },
        );
      }
      if (own) reply = { ...own, status: 201 };
    }
    if (reply.status !== 201) {
      // After a 503 that was retried, a later refusal (a 429 that ran out of budget) says nothing of
      // whether the first attempt was stored: settle it like any unknown outcome.
      const unknown = reply.earlierAttemptUnknown === true && reply.status !== 409;
      if (unknown || UNKNOWN_OUTCOME_STATUSES.has(reply.status)) {
        onUnknownOutcome();
        await settleUnknownOutcome(this.#context, this.#address, sent);
      }
      throw upstreamError(reply, subject);
    }
    this.#created.push({ id: sent.id, reply, options: sent.options, blob: sent.blob });
    return reply;
  }

  /** Deletes what this request created, newest first; a failure to undo is logged, never hidden. */
  async rollBack(): Promise<void> {
    for (const { id, options, blob } of this.#created.splice(0).reverse()) {
      try {
        const reply = await this.#context.cosmos.deleteAttachment(this.#address, id, {
          ...options,
          signal: undefined,
        });
        if (reply.status !== 204 && reply.status !== 404)
          throw new Error(`Cosmos DB answered ${reply.status} to the delete`);
      } catch (err) {
        // The attachment stays, so its blob must stay too: never leave an attachment pointing nowhere.
        this.#context.log.error('rollback: attachment not deleted', {
          ...this.#address,
          attachment: id,
          ...describeError(err),
        });
        continue;
      }
      if (blob) await deleteBlob(this.#context, this.#address, blob);
    }
  }
}
