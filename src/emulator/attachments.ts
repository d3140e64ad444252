import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { idProblem } from '../cosmos/ids.js';
import { attachmentContentType } from './content-type.js';
import type { Context } from './context.js';
import { EmulatorError, badRequest, tooLarge } from './errors.js';
import { byteRange, deleteMedia, openMedia, receiveMedia } from './media.js';
import { commonHeaders, deliver, feed, header, readJson, sendJson, stallBeforeCommit } from './respond.js';
import type { AttachmentBody, DocumentRef, Resource, StoredMedia } from './store.js';

/** The service's page size for a feed read without `x-ms-max-item-count` (or with -1). */
export const DEFAULT_PAGE_SIZE = 100;

/**
 * `POST .../attachments`: with a Slug, the body is the media (streamed to disk) and the Slug its id;
 * without, the body is the attachment's JSON. `x-ms-documentdb-is-upsert: true` makes it
 * create-or-replace (201 created, 200 replaced).
 */
export async function createAttachment(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  ref: DocumentRef,
  upsert: boolean,
): Promise<void> {
  const ifMatch = header(req, 'if-match');
  const slug = header(req, 'slug');
  if (slug === undefined) {
    const body = attachmentBody(await readJson(req));
    await stallBeforeCommit(res, ctx);
    if (!upsert) return sendJson(req, res, ctx, 201, ctx.store.createAttachment(ref, body));
    const { resource, created, orphaned } = ctx.store.upsertAttachment(ref, body, ifMatch);
    await Promise.all(orphaned.map(deleteMedia));
    return sendJson(req, res, ctx, created ? 201 : 200, resource);
  }
  const contentType = attachmentContentType(header(req, 'content-type'));
  const id = slugId(slug);
  // Refuse before reading any byte where the service would.
  if (!upsert) ctx.store.checkAttachmentCreate(ref, id);
  else if (ctx.store.listAttachments(ref).attachments.some((att) => att.id === id))
    ctx.store.checkAttachmentReplace(ref, id, id, ifMatch);
  const media = await receiveWithin(req, ctx);
  await stallBeforeCommit(res, ctx);
  const body = { id, contentType };
  let outcome: { resource: Resource; created: boolean; orphaned: StoredMedia[] };
  try {
    outcome = upsert
      ? ctx.store.upsertAttachment(ref, body, ifMatch, media)
      : { resource: ctx.store.createAttachment(ref, body, media), created: true, orphaned: [] };
  } catch (err) {
    await deleteMedia(media);
    throw err;
  }
  await Promise.all(outcome.orphaned.map(deleteMedia));
  return sendJson(req, res, ctx, outcome.created ? 201 : 200, outcome.resource);
}

/**
 * `PUT .../attachments/{id}`: new JSON properties, or with a Slug new media bytes (the Slug names the
 * attachment, the Content-Type its type), as the REST reference's "Replace an Attachment" allows both.
 */
export async function replaceAttachment(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  ref: DocumentRef,
  id: string,
): Promise<void> {
  const ifMatch = header(req, 'if-match');
  const slug = header(req, 'slug');
  let result: { resource: Resource; orphaned: StoredMedia[] };
  if (slug === undefined) {
    result = ctx.store.replaceAttachment(ref, id, attachmentBody(await readJson(req)), ifMatch);
  } else {
    const contentType = attachmentContentType(header(req, 'content-type'));
    const newId = slugId(slug);
    ctx.store.checkAttachmentReplace(ref, id, newId, ifMatch);
    const media = await receiveWithin(req, ctx);
    try {
      result = ctx.store.replaceAttachment(ref, id, { id: newId, contentType }, ifMatch, media);
    } catch (err) {
      await deleteMedia(media);
      throw err;
    }
  }
  await Promise.all(result.orphaned.map(deleteMedia));
  return sendJson(req, res, ctx, 200, result.resource);
}

/**
 * `GET .../attachments`: one page in creation order. The continuation token is opaque to callers: it
 * holds the creation sequence of the page's last attachment, so deletes and creates between pages
 * neither repeat nor skip the ones that stayed.
 */
export function listAttachments(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  ref: DocumentRef,
): void {
  const max = pageSize(header(req, 'x-ms-max-item-count'));
  const after = continuationOf(header(req, 'x-ms-continuation'));
  const { documentRid, page, last, more } = ctx.store.pageAttachments(ref, after, max);
  const headers: Record<string, string> = { 'x-ms-item-count': String(page.length) };
  if (more) headers['x-ms-continuation'] = Buffer.from(JSON.stringify({ after: last })).toString('base64url');
  sendJson(req, res, ctx, 200, feed('Attachments', documentRid, page), headers);
}

/** `GET /media/{id}`: the bytes, with the attachment's type; a single byte range when ranges are honoured. */
export function sendMedia(req: IncomingMessage, res: ServerResponse, ctx: Context, mediaId: string): void {
  const { media, contentType } = ctx.store.readMedia(mediaId);
  if (!media.path) throw new EmulatorError(404, 'NotFound', 'Media is discarded in this emulator mode.');
  const range = ctx.honourMediaRanges ? byteRange(header(req, 'range'), media.size) : undefined;
  if (range === 'unsatisfiable') {
    throw new EmulatorError(416, 'RequestedRangeNotSatisfiable', 'The requested range is not satisfiable.', {
      'content-range': `bytes */${media.size}`,
    });
  }
  const stream = openMedia(media, range)!;
  deliver(res, ctx, () => {
    const ranged = range ? { 'content-range': `bytes ${range.start}-${range.end}/${media.size}` } : {};
    res.writeHead(range ? 206 : 200, {
      'content-type': contentType,
      'content-length': String(range ? range.end - range.start + 1 : media.size),
      ...(ctx.honourMediaRanges ? { 'accept-ranges': 'bytes' } : {}),
      ...ranged,
      ...commonHeaders(ctx, header(req, 'x-ms-version')),
    });
    pipeline(stream, res).catch(() => res.destroy());
  });
}

/** `PUT /media/{id}`: new bytes (streamed to disk) and type for a managed attachment. */
export async function replaceMedia(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  mediaId: string,
): Promise<void> {
  ctx.store.readMedia(mediaId); // 404 before any byte is read
  const contentType = attachmentContentType(header(req, 'content-type'));
  const media = await receiveWithin(req, ctx);
  try {
    const { resource, old } = ctx.store.replaceMedia(mediaId, media, contentType);
    await deleteMedia(old);
    return sendJson(req, res, ctx, 200, resource);
  } catch (err) {
    await deleteMedia(media);
    throw err;
  }
}

/** The body of a metadata attachment: `id`, `contentType` and `media` strings, and any custom properties. */
function attachmentBody(body: unknown): AttachmentBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('The JSON body is invalid.');
  const missing = ['id', 'contentType', 'media'].filter(
    (name) => typeof (body as Record<string, unknown>)[name] !== 'string',
  );
  if (missing.length > 0) {
    throw badRequest(
      `The input content is invalid because the required properties - '${missing.join('; ')}; ' - are missing`,
    );
  }
  const id = (body as { id: string }).id;
  if (idProblem(id) !== undefined) throw badRequest('The resource name is invalid.');
  return body as AttachmentBody;
}

/** RFC 5023: the Slug is percent-encoded UTF-8. */
function slugId(slug: string): string {
  let id: string;
  try {
    id = decodeURIComponent(slug);
  } catch {
    throw badRequest('The Slug header is not valid percent-encoded UTF-8.');
  }
  if (idProblem(id) !== undefined) throw badRequest('The resource name in the Slug header is invalid.');
  return id;
}

async function receiveWithin(req: IncomingMessage, ctx: Context): Promise<StoredMedia> {
  const declared = Number(header(req, 'content-length') ?? NaN);
  if (declared > ctx.media.maxBytes) throw tooLarge();
  return receiveMedia(req, ctx.media);
}

/** `x-ms-max-item-count`: absent or -1 lets the service choose (100); otherwise 1 or more. */
export function pageSize(value: string | undefined): number {
  if (value === undefined || value.trim() === '-1') return DEFAULT_PAGE_SIZE;
  const size = Number(value);
  if (!Number.isInteger(size) || size < 1)
    throw badRequest('x-ms-max-item-count must be -1 or a positive integer.');
  return size;
}

function continuationOf(token: string | undefined): number {
  if (token === undefined) return 0;
  try {
    const { after } = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { after?: unknown };
    if (Number.isInteger(after) && (after as number) >= 0) return after as number;
  } catch {
    // refused below
  }
  throw badRequest('The continuation token is invalid.');
}
