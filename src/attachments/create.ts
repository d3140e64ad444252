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
  /** When the write replaced an attachment (200) rather than creating one: the version it replaced, if known. */
  replaced?: FoundAttachment | undefined;
}

/** Attempts of an upsert whose attachment keeps being created or changed by others meanwhile. */
const UPSERT_ATTEMPTS = 4;

/**
 * A create that did not succeed. `refused`: Cosmos DB answered with an error and stored nothing (its
 * reply says why). `unknown`: it may have stored it (the connection broke, it timed out, it failed
 * inside); the record must be settled: looked up, and removed if it is its own.
 */
export class CreateFailed extends Error {
  readonly outcome: 'refused' | 'unknown';
  readonly reply: CosmosReply | undefined;
  /**
   * Set when the write was to replace this version of the attachment (a replace, or an upsert that
   * found it): an unknown outcome then leaves it as it was or replaced, never a create to settle.
   */
  readonly replacing: FoundAttachment | undefined;

  constructor(
    outcome: 'refused' | 'unknown',
    reply: CosmosReply | undefined,
    options?: { cause?: unknown; replacing?: FoundAttachment | undefined },
  ) {
    super(
      outcome === 'refused'
        ? `Cosmos DB refused the create (${reply?.status})`
        : `The create's outcome is unknown${reply ? ` (Cosmos DB answered ${reply.status})` : ''}`,
      options,
    );
    this.name = 'CreateFailed';
    this.outcome = outcome;
    this.reply = reply;
    this.replacing = options?.replacing;
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

/**
 * Replaces the attachment at version `current` (If-Match) with a metadata attachment (`properties`:
 * id, contentType, media, custom properties) marked with the record's upload id. 412 and 404 (it
 * changed or went meanwhile) are refusals; an unknown outcome carries `replacing`.
 */
export async function replaceMetadataAttachment(
  cosmos: CosmosClient,
  record: UploadRecord,
  properties: Record<string, unknown>,
  current: FoundAttachment,
  sessionToken: string | undefined,
): Promise<CreatedAttachment> {
  const json = JSON.stringify({ ...properties, [UPLOAD_ID_PROPERTY]: record.uploadId });
  let reply: CosmosReply;
  try {
    reply = await cosmos.replaceAttachment(record.address, record.id, json, {
      partitionKey: record.partitionKey,
      sessionToken,
      ifMatch: current.etag,
    });
  } catch (err) {
    if (isOutcomeUnknown(err))
      throw new CreateFailed('unknown', undefined, { cause: err, replacing: current });
    throw err;
  }
  if (reply.status === 200) {
    const stored = foundIn(reply, cosmos);
    if (typeof stored.resource._rid === 'string') record.rid = stored.resource._rid;
    return { reply, resource: stored.resource, etag: stored.etag, replaced: current };
  }
  const unknown = reply.earlierAttemptUnknown || UNKNOWN_OUTCOME_STATUSES.has(reply.status);
  throw new CreateFailed(unknown ? 'unknown' : 'refused', reply, { replacing: current });
}

/**
 * Create-or-replace of a metadata attachment, as Cosmos DB's upsert answers it (201 created, 200
 * replaced), but conditional at every step: it creates when there is none (409: someone created one
 * meanwhile, look again) and replaces the version it found (412: it changed meanwhile, look again), so
 * the version it reports as replaced is exactly the one it replaced, whose blob may then go.
 */
export async function upsertMetadataAttachment(
  cosmos: CosmosClient,
  record: UploadRecord,
  properties: Record<string, unknown>,
  sessionToken: string | undefined,
): Promise<CreatedAttachment> {
  let refusal: CreateFailed | undefined;
  for (let attempt = 0; attempt < UPSERT_ATTEMPTS; attempt++) {
    const current = await currentAttachment(cosmos, record);
    try {
      if (!current) return await createMetadataAttachment(cosmos, record, properties, sessionToken);
      return await replaceMetadataAttachment(cosmos, record, properties, current, sessionToken);
    } catch (err) {
      const status = err instanceof CreateFailed && err.outcome === 'refused' ? err.reply?.status : undefined;
      if (!(status === 409 || status === 412 || (status === 404 && current))) throw err;
      refusal = err as CreateFailed;
    }
  }
  throw refusal!;
}

/**
 * The attachment a record names, as it is now, before a write that depends on it; a refusal to say
 * (a missing document, throttling) is the write's own refusal: nothing was stored.
 */
export async function currentAttachment(
  cosmos: CosmosClient,
  record: Pick<UploadRecord, 'address' | 'partitionKey' | 'id'>,
): Promise<FoundAttachment | undefined> {
  const reply = await cosmos.readAttachment(record.address, record.id, { partitionKey: record.partitionKey });
  if (reply.status === 404) return undefined;
  if (reply.status !== 200) throw new CreateFailed('refused', reply);
  return foundIn(reply, cosmos);
}
