import type { Readable } from 'node:stream';
import type { CallOptions, CosmosClient, CosmosReply, DocumentAddress } from '../cosmos/client.js';
import { BridgeError } from '../http/errors.js';
import { describeError, type Logger } from '../log.js';
import type { WritePolicy } from '../policy/write-policy.js';
import type { Settings } from '../settings.js';
import { upstreamError } from './cosmos-replies.js';

export interface RouteContext {
  cosmos: CosmosClient;
  settings: Settings;
  log: Logger;
  policy: WritePolicy;
}

interface Created {
  id: string;
  reply: CosmosReply;
  options: CallOptions;
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

  /** A managed attachment from raw media; Cosmos DB's error status is thrown as the caller's error. */
  async createMedia(
    upload: { id: string; contentType: string; body: Buffer | Readable },
    options: CallOptions,
    subject: string,
  ): Promise<CosmosReply> {
    this.#context.policy.contentType(upload.contentType, subject);
    return this.#create(upload.id, options, subject, { contentType: upload.contentType }, () =>
      this.#context.cosmos.createAttachmentFromMedia(this.#address, upload, options),
    );
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
    for (const { id, options } of this.#created.splice(0).reverse()) {
      try {
        await this.#delete(id, options);
      } catch (err) {
        this.#context.log.error('rollback: attachment not deleted', {
          ...this.#address,
          attachment: id,
          ...describeError(err),
        });
      }
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
