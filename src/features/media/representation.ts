import contentTypeHeader from 'content-type';
import { ORIGINAL_NAME_PROPERTY } from '../../attachments/ids.js';
import type { AttachmentResource } from '../../attachments/record.js';
import type { Validators } from '../../http/conditional.js';
import { contentDisposition, mayShowInline } from '../../http/content-disposition.js';

/**
 * The validators of an attachment's media, known from the attachment alone, so conditional requests
 * are answered before the media is opened (or a redirect signed):
 * - ETag: the SHA-256 the bridge recorded for the bytes (`sha256`, written with every upload and every
 *   replace, in both media modes), as a strong tag: the same for every read of the same bytes, from any
 *   instance, and new whenever the bytes change. Media the bridge did not upload (managed media made
 *   before it) has none: its tag is the attachment's `_etag`, weak, because `_etag` also changes when
 *   only properties do and says nothing certain about the bytes (so it never satisfies If-Range).
 * - Last-Modified: the attachment's `_ts` (its last change, in whole seconds), which every change of
 *   the bytes through the bridge moves.
 */
export function mediaValidators(resource: AttachmentResource): Validators {
  const sha256 = resource.sha256;
  const etag =
    typeof sha256 === 'string' && /^[0-9a-f]{64}$/.test(sha256)
      ? `"${sha256}"`
      : `W/${typeof resource._etag === 'string' ? resource._etag : '""'}`;
  const ts = Number(resource._ts);
  return { etag, lastModified: Number.isSafeInteger(ts) && ts > 0 ? ts : undefined };
}

/** The size the bridge recorded for the bytes, when it did. */
export function recordedSize(resource: AttachmentResource): number | undefined {
  const size = resource.size;
  return typeof size === 'number' && Number.isSafeInteger(size) && size >= 0 ? size : undefined;
}

export interface Representation {
  /** What the answer declares the bytes to be: the attachment's type, when it is one valid media type. */
  contentType: string;
  contentDisposition: string;
  /** Headers every answer about these bytes carries (200, 206, 304, 416, HEAD). */
  headers: Record<string, string>;
}

/**
 * How the bytes are presented: their type, and `inline` only when asked (not `?download=1`) and the type
 * is one a browser shows without running anything (content-disposition.ts); every other type is always
 * an attachment download. The file name is the upload's original name when the id was derived from it.
 */
export function representation(
  resource: AttachmentResource,
  validators: Validators,
  download: boolean,
): Representation {
  const contentType = servedType(resource.contentType);
  const mediaType = contentType.split(';', 1)[0]!;
  const disposition = download || !mayShowInline(mediaType) ? 'attachment' : 'inline';
  const original = resource[ORIGINAL_NAME_PROPERTY];
  const filename = typeof original === 'string' && original.trim() !== '' ? original : resource.id;
  const header = contentDisposition(disposition, filename);
  return {
    contentType,
    contentDisposition: header,
    headers: {
      'content-type': contentType,
      'content-disposition': header,
      'x-content-type-options': 'nosniff',
      // Reads are per caller (a key, a token): never from a shared cache; revalidated with the ETag.
      'cache-control': 'private, no-cache',
      etag: validators.etag,
      ...(validators.lastModified === undefined
        ? {}
        : { 'last-modified': new Date(validators.lastModified * 1000).toUTCString() }),
      'accept-ranges': 'bytes',
    },
  };
}

/** The attachment's content type, normalised, or application/octet-stream when it is not one valid type. */
function servedType(value: unknown): string {
  if (typeof value !== 'string') return 'application/octet-stream';
  try {
    return contentTypeHeader.format(contentTypeHeader.parse(value));
  } catch {
    return 'application/octet-stream';
  }
}
