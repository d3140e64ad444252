import type { CosmosClient, CosmosReply } from '../cosmos/client.js';
import { isOutcomeUnknown } from '../cosmos/errors.js';
import { findAttachment, foundIn } from './lookups.js';
import {
  UPLOAD_ID_PROPERTY,
  ownershipByMark,
  type AttachmentResource,
  type FoundAttachment,
  type UploadRecord,
} from './record.js';

/**
 * Cosmos DB statuses after which a write may or may not have been applied: it timed out (408) or
 * failed inside the service (5xx). 429 and 449 promise nothing was done, so they are not here.
 */
export const UNKNOWN_OUTCOME_STATUSES = new Set([408, 500, 502, 503, 504]);

/** A created attachment, as Cosmos DB answered (the reply a caller may see) and as it now stands. */
export interface CreatedAttachment {
  reply: CosmosReply;
  resource: AttachmentResource;
  /** The version that is this upload's own: rollback deletes only while it is still at it. */
  etag: string;
}

/**
 * A create that did not succeed. `refused`: Cosmos DB answered with an error and stored nothing (its
 * reply says why). `unknown`: it may have stored it (the connection broke, it timed out, it failed
 * inside); the record must be settled: looked up, and removed if it is its own.
 */
export class CreateFailed extends Error {
  readonly outcome: 'refused' | 'unknown';
  readonly reply: CosmosReply | undefined;

  constructor(outcome: 'refused' | 'unknown', reply: CosmosReply | undefined, options?: { cause?: unknown }) {
    super(
      outcome === 'refused'
        ? `Cosmos DB refused the create (${reply?.status})`
        : `The create's outcome is unknown${reply ? ` (Cosmos DB answered ${reply.status})` : ''}`,
      options,
    );
    this.name = 'CreateFailed';
    this.outcome = outcome;
    this.reply = reply;
  }
}

/**
 * A create's reply as success or a CreateFailed. A retry after a 503 that meets a 409 may be meeting
 * its own first attempt, stored after all: `findOwn` says whether it is (throwing when it cannot tell,
 * which leaves the outcome unknown).
 */
export async function createdFrom(
  reply: CosmosReply,
  cosmos: CosmosClient,
  findOwn: () => Promise<FoundAttachment | undefined>,
): Promise<CreatedAttachment> {
  if (reply.status === 201) {
    const found = foundIn(reply, cosmos);
    return { reply, resource: found.resource, etag: found.etag };
  }
  if (reply.status === 409 && reply.earlierAttemptUnknown) {
    let own: FoundAttachment | undefined;
    try {
      own = await findOwn();
    } catch (err) {
      throw new CreateFailed('unknown', reply, { cause: err });
    }
    if (own) {
      return {
        reply: { ...reply, status: 201, body: JSON.stringify(own.resource) },
        resource: own.resource,
        etag: own.etag,
      };
    }
    throw new CreateFailed('refused', reply);
  }
  // After a 503 that was retried, a later refusal (a 429 past the budget) says nothing of whether the
  // first attempt was stored.
  if (reply.earlierAttemptUnknown || UNKNOWN_OUTCOME_STATUSES.has(reply.status)) {
    throw new CreateFailed('unknown', reply);
  }
  throw new CreateFailed('refused', reply);
}

/**
 * Creates a metadata attachment (`properties`: id, contentType, media, and custom properties) marked
 * with the record's upload id, so that it can always be told apart from anyone else's.
 */
export async function createMetadataAttachment(
  cosmos: CosmosClient,
  record: UploadRecord,
  properties: Record<string, unknown>,
  sessionToken: string | undefined,
): Promise<CreatedAttachment> {
  const json = JSON.stringify({ ...properties, [UPLOAD_ID_PROPERTY]: record.uploadId });
  let reply: CosmosReply;
  try {
    reply = await cosmos.createAttachmentFromJson(record.address, json, {
      partitionKey: record.partitionKey,
      sessionToken,
    });
  } catch (err) {
    if (isOutcomeUnknown(err)) throw new CreateFailed('unknown', undefined, { cause: err });
    throw err;
  }
  return createdFrom(reply, cosmos, async () => {
    const found = await findAttachment(cosmos, record);
    return found && ownershipByMark(found.resource, record.uploadId) === 'own' ? found : undefined;
  });
}
