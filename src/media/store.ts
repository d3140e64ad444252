import type { Readable } from 'node:stream';
import type { CreatedAttachment } from '../attachments/create.js';
import type { AttachmentResource, FoundAttachment, Ownership, UploadRecord } from '../attachments/record.js';
import type { DocumentAddress, ReplayableBody } from '../cosmos/client.js';
import type { PartitionKey } from '../cosmos/partition-key.js';
import type { Measurement } from '../multipart/measure.js';

/**
 * Where an attachment's bytes live, behind one interface: managed media inside Cosmos DB, or Blob
 * Storage with a metadata attachment pointing at the blob. Chosen once at start (MEDIA_STORE); every
 * backend passes the same contract suite (test/media-store.contract.test.ts).
 */
export interface MediaStore {
  readonly kind: 'managed' | 'blob';
  /**
   * Creates attachment `record.id` from a stream of bytes, under `record.uploadId`, marked so that it
   * can be proved to be this upload's, with the `size` and `sha256` of the bytes. Throws CreateFailed
   * (refused: nothing kept; unknown: settle the record, or with `replacing` set, see WriteTarget), or
   * the body's own failure (too large, the caller left: nothing kept). Fills in `record.blob`,
   * `record.size` and `record.sha256` as it learns them. `target` makes it replace instead (below).
   */
  create(upload: MediaUpload, record: UploadRecord, target?: WriteTarget): Promise<StoredAttachment>;
  /** Whether the attachment found under the record's id is the record's own (see SECURITY.md). */
  prove(found: FoundAttachment, record: UploadRecord): Promise<Ownership>;
  /**
   * After a create met its id taken: whether the attachment there holds the very bytes this upload
   * sent (content type, size and SHA-256, which `record` has), as what an earlier attempt of the same
   * upload stored does.
   */
  holdsSameBytes(found: FoundAttachment, record: UploadRecord): Promise<boolean>;
  /**
   * Makes such an attachment this upload's own (marked with its upload id; in blob mode pointing at
   * this upload's blob), only while it is at the version found: undefined when it changed or went.
   * `replaced` names media it no longer points at (blob mode: the earlier upload's blob), for the
   * caller to remove.
   */
  takeOver(
    found: FoundAttachment,
    record: UploadRecord,
  ): Promise<{ created: CreatedAttachment; replaced?: UploadRecord } | undefined>;
  /**
   * The media this bridge stored for an attachment, as the attachment itself proves it: managed media
   * whose link is the attachment's own (its media id holds the attachment's `_rid`), or a blob of this
   * store's container named for the attachment's document, partition key, id and upload mark, the
   * blob its upload wrote. Undefined for anything else (a link elsewhere, or one naming another
   * attachment's media), which the bridge never serves or deletes as its own.
   */
  locate(resource: AttachmentResource, owner: MediaOwner): Promise<StoredMedia | undefined>;
  /** The bytes of stored media, whole or one byte range. */
  open(media: StoredMedia, range?: ByteRange): Promise<OpenedMedia>;
  /**
   * A URL that reads the media without the bridge, for `options.ttlSeconds`, and nothing else (a
   * read-only SAS for that one blob); undefined when the media has none (managed media).
   */
  downloadUrl(media: StoredMedia, options: DownloadUrlOptions): Promise<string | undefined>;
  /**
   * Removes what the record's upload stored outside Cosmos DB (its blob), once no attachment can point
   * at it; only what that upload wrote (its blob is marked with the upload id). Nothing for managed media,
   * which goes with its attachment.
   */
  remove(record: UploadRecord): Promise<void>;
  close(): Promise<void>;
}

export interface MediaUpload {
  contentType: string;
  /** The bytes: whole (a small part), a stream, or a stream that can be had again for a retry. */
  body: Buffer | Readable | ReplayableBody;
  /** Size and SHA-256 of the bytes, once all of them went through. */
  measured(): Promise<Measurement>;
  /** The same, now: undefined while bytes may still come. */
  measurement(): Measurement | undefined;
  /** Properties recorded on the attachment besides id, contentType, media and the upload mark. */
  properties?: Record<string, unknown> | undefined;
  sessionToken?: string | undefined;
}

/**
 * What `create` does with attachment `record.id`:
 * - `create` (the default): a new attachment; a taken id is Cosmos DB's 409.
 * - `replace`: new media for the attachment at version `current` (If-Match): 412 or 404 when it
 *   changed or went meanwhile, nothing kept. Custom properties of `current` are kept.
 * - `upsert`: a new attachment, or the one there replaced, whatever version it is at.
 * A replace whose outcome is unknown throws CreateFailed `unknown` with `replacing` set: the attachment
 * is either as it was or points at the new media, and is never settled like a create.
 */
export type WriteTarget =
  { mode: 'create' } | { mode: 'replace'; current: FoundAttachment } | { mode: 'upsert' };

/** What `create` made: Cosmos DB's answer (201 created, 200 replaced) and, when known, what it replaced. */
export type StoredAttachment = CreatedAttachment;

/** Whose media is asked for: the attachment's document and partition key. */
export interface MediaOwner {
  address: DocumentAddress;
  partitionKey: PartitionKey | undefined;
}

/** Media the bridge stored, as `locate` found it. */
export type StoredMedia =
  | { kind: 'managed'; link: string }
  | {
      kind: 'blob';
      /** The blob's name in the store's container. */
      name: string;
      /** The upload that wrote it (its metadata says so too). */
      uploadId: string;
    };

export interface DownloadUrlOptions {
  ttlSeconds: number;
  /** Served by the storage service in place of the blob's own headers (SAS response overrides). */
  contentType: string;
  contentDisposition: string;
}

/** Inclusive byte positions, as in a `Range: bytes=start-end` header. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface OpenedMedia {
  body: Readable;
  /** Size of the whole media. */
  size: number;
  /** The range `body` holds, when a range was asked for and could be served. */
  range?: ByteRange | undefined;
  contentType?: string | undefined;
}
