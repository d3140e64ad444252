import type { CosmosClient, CosmosReply } from '../cosmos/client.js';
import type { AttachmentResource, FoundAttachment, UploadRecord } from './record.js';

/** A failed look-up or delete: Cosmos DB answered something the clean-up cannot act on now. */
export class LookupFailed extends Error {
  readonly status: number;

  constructor(what: string, status: number) {
    super(`Cosmos DB answered ${status} to the ${what}`);
    this.name = 'LookupFailed';
    this.status = status;
  }
}

/** The attachment a record names, as it is now; undefined when it does not exist. */
export async function findAttachment(
  cosmos: CosmosClient,
  record: Pick<UploadRecord, 'address' | 'partitionKey' | 'id'>,
): Promise<FoundAttachment | undefined> {
  const reply = await cosmos.readAttachment(record.address, record.id, { partitionKey: record.partitionKey });
  if (reply.status === 404) return undefined;
  if (reply.status !== 200) throw new LookupFailed('look-up', reply.status);
  return foundIn(reply, cosmos);
}

/** A 200 or 201 reply carrying an attachment resource, as a FoundAttachment. */
export function foundIn(reply: CosmosReply, cosmos: CosmosClient): FoundAttachment {
  const resource = JSON.parse(reply.body) as AttachmentResource;
  const etag = typeof resource._etag === 'string' ? resource._etag : (reply.headers.etag ?? '');
  const date = Date.parse(reply.headers.date ?? '');
  return { resource, etag, serviceNow: Number.isFinite(date) ? date : cosmos.serviceNow() };
}

/**
 * Deletes the attachment a record names only while it is at `etag`, the version that was proved to be
 * the record's own: `changed` when it is no longer at that version (someone replaced it meanwhile),
 * `absent` when it is gone already.
 */
export async function deleteIfUnchanged(
  cosmos: CosmosClient,
  record: Pick<UploadRecord, 'address' | 'partitionKey' | 'id'>,
  etag: string,
): Promise<'deleted' | 'absent' | 'changed'> {
  const reply = await cosmos.deleteAttachment(record.address, record.id, {
    partitionKey: record.partitionKey,
    ifMatch: etag,
  });
  if (reply.status === 204) return 'deleted';
  if (reply.status === 404) return 'absent';
  if (reply.status === 412) return 'changed';
  throw new LookupFailed('delete', reply.status);
}
