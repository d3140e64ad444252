import type { Readable } from 'node:stream';
import type { CallOptions, CosmosClient, CosmosReply, DocumentAddress } from '../cosmos/client.js';
import { BridgeError } from '../http/errors.js';
import { describeError, type Logger } from '../log.js';
import type { BlobMediaStore } from '../media/blob-store.js';
import type { Measurement } from '../multipart/measure.js';
import type { WritePolicy } from '../policy/write-policy.js';
import type { Settings } from '../settings.js';
import { upstreamError } from './cosmos-replies.js';

export interface RouteContext {
  cosmos: CosmosClient;
  settings: Settings;
  log: Logger;
  policy: WritePolicy;
  /** Set when MEDIA_STORE=blob: file bytes go to Blob Storage, and Cosmos DB gets a metadata attachment. */
  blobs: BlobMediaStore | undefined;
}

interface Created {
  id: string;
  reply: CosmosReply;
  options: CallOptions;
  /** The blob holding the media, in blob mode: undone with the attachment. */
  blob?: string;
}

/**
 * Creates the attachments of one request and remembers them, so that a failure anywhere can undo
 * them all. A create whose outcome is unknown (the connection broke or timed out after the body was
 * sent) is checked and undone too, so a failed request leaves nothing behind.
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
    upload: { id: string; contentType: string; body: Buffer | Readable },
    measured: () => Promise<Measurement>,
    options: CallOptions,
    subject: string,
  ): Promise<CosmosReply> {
    this.#context.policy.contentType(upload.contentType, subject);
    const { blobs } = this.#context;
    if (blobs) return this.#createViaBlob(blobs, upload, measured, options, subject);
    return this.#create(upload.id, options, subject, { contentType: upload.contentType }, () =>
      this.#context.cosmos.createAttachmentFromMedia(this.#address, upload, options),
    );
  }

  async #createViaBlob(
    blobs: BlobMediaStore,
    upload: { id: string; contentType: string; body: Buffer | Readable },
    measured: () => Promise<Measurement>,
    options: CallOptions,
    subject: string,
  ): Promise<CosmosReply> {
    const blob = await blobs.put(
      this.#address,
      options.partitionKey,
      upload.id,
      upload.body,
      upload.contentType,
    );
    const name = blob.name;
    try {
      const { size, sha256 } = await measured();
      const metadata = { id: upload.id, contentType: upload.contentType, media: blob.url, size, sha256 };
      const reply = await this.#create(upload.id, options, subject, metadata, () =>
        this.#context.cosmos.createAttachmentFromJson(this.#address, JSON.stringify(metadata), options),
      );
      this.#created.at(-1)!.blob = name;
      return reply;
    } catch (err) {
      await this.#deleteBlob(name);
      throw err;
    }
  }

  /** A metadata attachment from its JSON body (already validated). */
  async createMetadata(
    metadata: { id: string; contentType: string; media: unknown; json: string },
    options: CallOptions,
    subject: string,
  ): Promise<CosmosReply> {
    this.#context.policy.contentType(metadata.contentType, subject);
    return this.#create(metadata.id, options, subject, metadata, () =>
      this.#context.cosmos.createAttachmentFromJson(this.#address, metadata.json, options),
    );
  }

  async #create(
    id: string,
    options: CallOptions,
    subject: string,
    expected: { contentType: string; media?: unknown },
    send: () => Promise<CosmosReply>,
  ): Promise<CosmosReply> {
    // Cosmos DB stamps `_ts` in whole seconds; one second of slack covers the rounding.
    const startedSeconds = Math.floor(Date.now() / 1000) - 1;
    let reply: CosmosReply;
    try {
      reply = await send();
    } catch (err) {
      if (
        err instanceof BridgeError &&
        (err.code === 'UpstreamUnreachable' || err.code === 'UpstreamTimeout')
      ) {
        await this.#undoIfCreated(id, options, startedSeconds, expected);
      }
      throw err;
    }
    if (reply.status !== 201) throw upstreamError(reply, subject);
    this.#created.push({ id, reply, options });
    return reply;
  }

  /**
   * After an unknown outcome: an attachment with this id that is as new as this request and has what
   * was sent is this request's own, and goes. An older one (someone else's) is left alone.
   */
  async #undoIfCreated(
    id: string,
    options: CallOptions,
    startedSeconds: number,
    expected: { contentType: string; media?: unknown },
  ): Promise<void> {
    const { cosmos, log } = this.#context;
    try {
      const found = await cosmos.readAttachment(this.#address, id, options);
      if (found.status !== 200) return;
      const resource = JSON.parse(found.body) as { _ts?: unknown; contentType?: unknown; media?: unknown };
      const ours =
        typeof resource._ts === 'number' &&
        resource._ts >= startedSeconds &&
        typeof resource.contentType === 'string' &&
        mediaType(resource.contentType) === mediaType(expected.contentType) &&
        (expected.media === undefined || resource.media === expected.media);
      if (ours) await this.#delete(id, options);
    } catch (err) {
      log.error('an attachment may be left behind after an unknown outcome', {
        ...this.#address,
        attachment: id,
        ...describeError(err),
      });
    }
  }

  /** Deletes what this request created, newest first; a failure to undo is logged, never hidden. */
  async rollBack(): Promise<void> {
    for (const { id, options, blob } of this.#created.splice(0).reverse()) {
      try {
        await this.#delete(id, options);
      } catch (err) {
        // The attachment stays, so its blob must stay too: never leave an attachment pointing nowhere.
        this.#context.log.error('rollback: attachment not deleted', {
          ...this.#address,
          attachment: id,
          ...describeError(err),
        });
        continue;
      }
      if (blob) await this.#deleteBlob(blob);
    }
  }

  async #deleteBlob(name: string): Promise<void> {
    try {
      await this.#context.blobs?.delete(name);
    } catch (err) {
      this.#context.log.error('rollback: blob not deleted', {
        ...this.#address,
        blob: name,
        ...describeError(err),
      });
    }
  }

  async #delete(id: string, options: CallOptions): Promise<void> {
    const reply = await this.#context.cosmos.deleteAttachment(this.#address, id, {
      ...options,
      signal: undefined,
    });
    if (reply.status !== 204 && reply.status !== 404) {
      throw new Error(`Cosmos DB answered ${reply.status} to the delete`);
    }
  }
}

function mediaType(contentType: string): string {
  return contentType.split(';', 1)[0]!.trim().toLowerCase();
}
