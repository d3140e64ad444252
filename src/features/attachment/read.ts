import { foundIn } from '../../attachments/lookups.js';
import { notModified } from '../../http/conditional.js';
import { passedBackHeaders, upstreamError } from '../../http/cosmos-replies.js';
import type { RequestContext, RouteParams } from '../context.js';
import { attachmentTarget } from '../target.js';

/**
 * `GET` and `HEAD .../attachments/{id}`: the attachment resource as Cosmos DB answers it, with its
 * `etag` (the resource's `_etag`) and `Last-Modified` (its `_ts`); If-None-Match or If-Modified-Since
 * matching it is a 304.
 */
export async function readAttachment(
  request: Request,
  params: RouteParams,
  context: RequestContext,
): Promise<Response> {
  const { address, id, options } = attachmentTarget(request, params, context);
  const reply = await context.cosmos.readAttachment(address, id, options);
  if (reply.status !== 200) throw upstreamError(reply, `Attachment "${id}"`);
  const { resource, etag } = foundIn(reply, context.cosmos);
  const ts = Number(resource._ts);
  const lastModified = Number.isSafeInteger(ts) && ts > 0 ? ts : undefined;
  const validators = {
    etag,
    'cache-control': 'private, no-cache',
    ...(lastModified === undefined ? {} : { 'last-modified': new Date(lastModified * 1000).toUTCString() }),
  };
  if (notModified(request.headers, { etag, lastModified })) {
    return new Response(null, { status: 304, headers: validators });
  }
  const headers = {
    ...passedBackHeaders(reply),
    ...validators,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(reply.body)),
  };
  return new Response(request.method === 'HEAD' ? null : reply.body, { status: 200, headers });
}
