import { randomBytes } from 'node:crypto';

/** The levels of the resource tree a `_rid` can name. */
export type RidKind = 'database' | 'collection' | 'document' | 'attachment';

const EXTRA_BYTES: Record<RidKind, number> = { database: 4, collection: 4, document: 8, attachment: 4 };

/**
 * Cosmos DB resource ids (`_rid`): a database has 4 bytes, a collection 8 (its database's plus 4), a
 * document 16 (collection's plus 8), an attachment 20 (document's plus 4). They are written in base64
 * with "/" as "-" so they fit in a URL path. The SDKs parse them (the legacy SDK's resourceId.js): a
 * collection's 5th byte has its top bit set (a user's does not), and a document's 16th byte has 0 in
 * its top four bits (the "document" type; triggers, UDFs and the like use other values). The legacy SDK
 * turns only the first "-" back into "/", so the emulator makes rids whose base64 has no "/" at all.
 */
export function childRid(parent: Buffer | undefined, kind: RidKind): Buffer {
  for (;;) {
    const rid = Buffer.concat([parent ?? Buffer.alloc(0), randomBytes(EXTRA_BYTES[kind])]);
    if (kind === 'collection') rid[4] = rid[4]! | 0x80;
    if (kind === 'document') rid[15] = rid[15]! & 0x0f;
    if (!rid.toString('base64').includes('/')) return rid;
  }
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
