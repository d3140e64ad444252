import type { Readable } from 'node:stream';
import type { CreatedAttachment } from '../attachments/create.js';
import type { AttachmentResource, FoundAttachment, Ownership, UploadRecord } from '../attachments/record.js';
import type { ReplayableBody } from '../cosmos/client.js';
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
   * can be proved to be this upload's. Throws CreateFailed (refused: nothing kept; unknown: settle the
   * record), or the body's own failure (too large, the caller left: nothing kept). Fills in
   * `record.blob`, `record.size` and `record.sha256` as it learns them.
   */
  create(upload: MediaUpload, record: UploadRecord): Promise<CreatedAttachment>;
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
  /** The bytes of an attachment's media, whole or one byte range. */
  open(resource: AttachmentResource, range?: ByteRange): Promise<OpenedMedia>;
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
