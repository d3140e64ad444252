import { randomBytes } from 'node:crypto';

/**
 * Cosmos DB resource ids (`_rid`): a database has 4 bytes, a collection 8 (its database's plus 4), a
 * document 16 (collection's plus 8), an attachment 20 (document's plus 4). They are written in base64
 * with "/" as "-" so they fit in a URL path.
 */
export function childRid(parent: Buffer | undefined, extraBytes: number): Buffer {
  return Buffer.concat([parent ?? Buffer.alloc(0), randomBytes(extraBytes)]);
}

export function ridString(rid: Buffer): string {
  return rid.toString('base64').replace(/\//g, '-');
}

const ATTACHMENT_RID_BYTES = 20;

/** A managed attachment's media id: its 20-byte `_rid` and one more byte, base64 with "/" as "-". */
export function mediaIdFor(attachmentRid: Buffer): string {
  return ridString(Buffer.concat([attachmentRid, Buffer.from([1])]));
}

/**
 * The attachment `_rid` a media id belongs to, as the SDKs derive it for signing: the first 20 bytes,
 * base64 (padding kept) with "/" as "-". Undefined for a string that is not a media id.
 */
export function attachmentRidOfMediaId(mediaId: string): string | undefined {
  if (!/^[A-Za-z0-9+-]+={0,2}$/.test(mediaId)) return undefined;
  const bytes = Buffer.from(mediaId.replace(/-/g, '/'), 'base64');
  if (bytes.length <= ATTACHMENT_RID_BYTES) return undefined;
  return ridString(bytes.subarray(0, ATTACHMENT_RID_BYTES));
}
