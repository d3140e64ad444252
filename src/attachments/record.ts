import type { DocumentAddress } from '../cosmos/client.js';
import type { PartitionKey } from '../cosmos/partition-key.js';
import { randomString } from '../random.js';

/**
 * Every attachment the bridge creates carries the id of the upload that wrote it, as this property.
 * It is the bridge's proof of ownership: clean-up deletes only attachments marked with its own upload
 * id (see SECURITY.md, "What the bridge deletes"). Callers may not set it.
 */
export const UPLOAD_ID_PROPERTY = 'bridgeUploadId';

/** A new upload id: 128 random bits, URL-safe. */
export function newUploadId(): string {
  return randomString(16, 'base64url');
}

/**
 * What one create sent, kept so that it can be proved and cleaned up later, by this request or by the
 * durable clean-up queue on any instance: plain JSON, no secrets.
 */
export interface UploadRecord {
  address: DocumentAddress;
  partitionKey?: PartitionKey | undefined;
  /** The attachment id. */
  id: string;
  uploadId: string;
  contentType: string;
  /** When the create was sent, in Cosmos DB's clock (ms), as far as the bridge knows it. */
  startedAt: number;
  /** Where the bytes went: managed media (in Cosmos DB), a blob, or none (a metadata attachment). */
  media: 'managed' | 'blob' | 'none';
  /** In blob mode: the blob this upload wrote (named for it alone). */
  blob?: string | undefined;
  /** Size and SHA-256 of the bytes sent, once all of them were taken in. */
  size?: number | undefined;
  sha256?: string | undefined;
  /**
   * The `_rid` Cosmos DB gave the attachment this create made, once a 201 told it: that resource is
   * this upload's whatever it carries (the mark may not have been written yet).
   */
  rid?: string | undefined;
}

/** An attachment as read back from Cosmos DB, with what the read told about the service's clock. */
export interface FoundAttachment {
  resource: AttachmentResource;
  etag: string;
  /** Cosmos DB's clock when it answered (its `Date` header), in ms. */
  serviceNow: number;
}

export interface AttachmentResource {
  id: string;
  contentType?: unknown;
  media?: unknown;
  _rid?: unknown;
  _etag?: unknown;
  _ts?: unknown;
  [property: string]: unknown;
}

/** `own`: provably this upload's; `other`: not (or not provably); `undecided`: too early to tell. */
export type Ownership = 'own' | 'other' | 'undecided';

/** The rule for marked attachments: the mark decides. Undefined when the attachment carries no mark. */
export function ownershipByMark(resource: AttachmentResource, uploadId: string): Ownership | undefined {
  const mark = resource[UPLOAD_ID_PROPERTY];
  if (typeof mark !== 'string') return undefined;
  return mark === uploadId ? 'own' : 'other';
}

/**
 * What can be proved without looking at bytes: the mark, or else the resource id a 201 gave this
 * upload. Undefined when neither is there to decide.
 */
export function provedOwnership(found: FoundAttachment, record: UploadRecord): Ownership | undefined {
  const byMark = ownershipByMark(found.resource, record.uploadId);
  if (byMark !== undefined) return byMark;
  if (record.rid !== undefined) return found.resource._rid === record.rid ? 'own' : 'other';
  return undefined;
}

/** The caller-visible properties of an attachment resource: everything but Cosmos DB's system properties. */
export function userProperties(resource: AttachmentResource): Record<string, unknown> {
  return Object.fromEntries(Object.entries(resource).filter(([name]) => !name.startsWith('_')));
}

/** Properties that describe an attachment's stored bytes: they change with the bytes, and only then. */
export const MEDIA_PROPERTIES = ['id', 'contentType', 'media', 'size', 'sha256', UPLOAD_ID_PROPERTY] as const;

/**
 * The custom properties of an attachment that new media for it keeps (a caller's own fields, an
 * `originalName`): everything but system properties and what describes the old bytes.
 */
export function carriedProperties(resource: AttachmentResource): Record<string, unknown> {
  const carried = userProperties(resource);
  for (const name of MEDIA_PROPERTIES) delete carried[name];
  return carried;
}
