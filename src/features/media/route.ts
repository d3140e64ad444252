import { pipeline } from 'node:stream';
import { foundIn } from '../../attachments/lookups.js';
import type { AttachmentResource } from '../../attachments/record.js';
import { notModified, rangeAllowed } from '../../http/conditional.js';
import { upstreamError } from '../../http/cosmos-replies.js';
import { BridgeError } from '../../http/errors.js';
import { contentRange, resolveRange, type RangeRequest } from '../../http/ranges.js';
import { streamBody } from '../../http/stream-body.js';
import { sliceRange } from '../../media/slice.js';
import type { OpenedMedia } from '../../media/store.js';
import type { RequestContext, RouteParams } from '../context.js';
import { attachmentTarget } from '../target.js';
import { mediaValidators, recordedSize, representation } from './representation.js';

/**
 * `GET` and `HEAD .../attachments/{id}/media`: the attachment's bytes, under the same rules as every
 * route (function key or sign-in, ALLOWED_TARGETS, the caller's own partition).
 * - Media the bridge stored (managed media of this very attachment, or the blob its upload wrote) is
 *   streamed with flat memory, one chunk at a time as the caller takes it; with DOWNLOAD_MODE=redirect,
 *   blob media is a 302 to a short-lived read-only SAS for that blob.
 * - A metadata attachment pointing elsewhere is a 302 to its `media` when that is an absolute https
 *   URL, else 404 `MediaElsewhere`.
 * Conditional requests (If-None-Match, If-Modified-Since: 304) are answered from the attachment alone,
 * before the media is opened; one byte range (`a-b`, `a-`, `-n`, under If-Range) is a 206, past the
 * end a 416; several ranges get the whole body.
 */
export async function downloadMedia(
  request: Request,
  params: RouteParams,
  context: RequestContext,
): Promise<Response> {
  const { address, id, partitionKey, options } = attachmentTarget(request, params, context);
  const reply = await context.cosmos.readAttachment(address, id, options);
  if (reply.status !== 200) throw upstreamError(reply, `Attachment "${id}"`);
  const { resource } = foundIn(reply, context.cosmos);
  const stored = await context.media.locate(resource, { address, partitionKey });
  if (!stored) return elsewhere(resource);

  const validators = mediaValidators(resource);
  const download = new URL(request.url).searchParams.get('download');
  const shown = representation(resource, validators, download === '1' || download === 'true');
  if (notModified(request.headers, validators)) {
    const { etag, 'last-modified': lastModified, 'cache-control': cacheControl } = shown.headers;
    return new Response(null, {
      status: 304,
      headers: {
        etag: etag!,
        'cache-control': cacheControl!,
        ...(lastModified ? { 'last-modified': lastModified } : {}),
      },
    });
  }
  const { download: settings } = context.settings;
  if (settings.mode === 'redirect') {
    const url = await context.media.downloadUrl(stored, {
      ttlSeconds: settings.sasTtlSeconds,
      contentType: shown.contentType,
      contentDisposition: shown.contentDisposition,
    });
    if (url !== undefined) return redirect(url);
  }

  // The size is the one the bridge recorded; media it did not upload is opened first to learn it.
  let opened: OpenedMedia | undefined;
  let size = recordedSize(resource);
  if (size === undefined) {
    opened = await context.media.open(stored);
    size = opened.size;
  }
  const asked: RangeRequest = rangeAllowed(request.headers, validators)
    ? resolveRange(request.headers.get('range'), size)
    : { kind: 'whole' };
  if (asked.kind === 'unsatisfiable') {
    opened?.body.destroy();
    const { 'content-type': _type, 'content-disposition': _disposition, ...headers } = shown.headers;
    throw new BridgeError('RangeNotSatisfiable', `The range is outside the media's ${size} bytes.`, {
      ...headers,
      'content-range': `bytes */${size}`,
    });
  }
  const range = asked.kind === 'range' ? asked.range : undefined;
  const headers: Record<string, string> = {
    ...shown.headers,
    'content-length': String(range ? range.end - range.start + 1 : size),
    ...(range ? { 'content-range': contentRange(range, size) } : {}),
  };
  const status = range ? 206 : 200;
  if (request.method === 'HEAD') {
    opened?.body.destroy();
    return new Response(null, { status, headers });
  }
  if (!opened) {
    opened = await context.media.open(stored, range);
    if (opened.size !== size) {
      opened.body.destroy();
      throw new BridgeError(
        'UpstreamBadResponse',
        `The stored media of attachment "${id}" is ${opened.size} bytes, not the ${size} recorded.`,
      );
    }
  } else if (range) {
    // Opened whole to learn its size: the bridge cuts the range out itself.
    const slice = sliceRange(range);
    pipeline(opened.body, slice, () => {});
    opened = { ...opened, body: slice };
  }
  return new Response(streamBody(opened.body), { status, headers });
}

/** A metadata attachment's own link: followed only when it is an absolute https URL. */
function elsewhere(resource: AttachmentResource): Response {
  const media = typeof resource.media === 'string' ? resource.media : '';
  let url: URL | undefined;
  try {
    url = new URL(media);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'https:' || url.username !== '' || url.password !== '') {
    throw new BridgeError(
      'MediaElsewhere',
      `Attachment "${resource.id}" points at media the bridge did not store and cannot send you to (not an absolute https URL).`,
    );
  }
  return redirect(url.href);
}

/**
 * A 302 no shared cache keeps (a SAS in it is a credential, if a short one), which leaks no Referer
 * (the caller's URL may carry its function key in `?code=`) to where it points.
 */
function redirect(location: string): Response {
  return new Response(null, {
    status: 302,
    headers: { location, 'cache-control': 'private, no-store', 'referrer-policy': 'no-referrer' },
  });
}
