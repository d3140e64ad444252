import { parseMetadata } from '../../attachments/metadata.js';
import { AttachmentWriter, withPendingCleanup } from '../../attachments/writer.js';
import type { DocumentAddress } from '../../cosmos/client.js';
import { assertValidId, decodeSlug } from '../../cosmos/ids.js';
import { callOptionsFrom, replyAsResponse } from '../../http/cosmos-replies.js';
import { BridgeError } from '../../http/errors.js';
import { callerBody, callerLeft, decodeUtf8, readSmallBody, rootCause } from '../../http/request-body.js';
import { tooLarge } from '../../multipart/measure.js';
import { documentAddress } from '../address.js';
import { bodyLimits } from '../body-limits.js';
import type { RequestContext, RouteParams } from '../context.js';
import { fileUpload } from './file-upload.js';
import { declaredLength, fromMultipart } from './multipart.js';

/** Longest Slug accepted: a 255-character id, every character percent-encoded UTF-8. */
const MAX_SLUG_CHARS = 255 * 12;

/**
 * `POST .../docs/{doc}/attachments`, by Content-Type: multipart/form-data (one attachment per part),
 * anything with a Slug header (raw media, as Cosmos DB itself takes it), or JSON (a metadata attachment).
 */
export async function createAttachments(
  request: Request,
  params: RouteParams,
  context: RequestContext,
): Promise<Response> {
  const address = documentAddress(params, context.settings);
  const contentType = request.headers.get('content-type') ?? '';
  const mediaType = contentType.split(';', 1)[0]!.trim().toLowerCase();
  const slug = request.headers.get('slug');
  if (mediaType === 'multipart/form-data') return fromMultipart(request, contentType, address, context);
  // A Slug means raw media to Cosmos DB whatever the type, so a JSON file with a Slug is media too.
  if (slug !== null)
    return fromRawMedia(request, mediaType === '' ? undefined : contentType, slug, address, context);
  if (mediaType === 'application/json' || mediaType.endsWith('+json'))
    return fromJson(request, address, context);
  throw new BridgeError(
    'UnsupportedMediaType',
    'Send multipart/form-data, application/json, or raw media with a Slug header naming the attachment.',
  );
}

async function fromRawMedia(
  request: Request,
  contentType: string | undefined,
  slug: string,
  address: DocumentAddress,
  context: RequestContext,
): Promise<Response> {
  const { settings, policy } = context;
  if (slug.length > MAX_SLUG_CHARS) throw new BridgeError('InvalidHeader', 'The Slug header is too long.');
  const id = assertValidId(decodeSlug(slug), 'Slug');
  const options = callOptionsFrom(request);
  const partitionKey = policy.partitionKey(options.partitionKey);
  const type = contentType ?? 'application/octet-stream';
  policy.contentType(type, `Attachment "${id}"`);
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > settings.limits.maxPartBytes) throw tooLarge(settings.limits.maxPartBytes, 'MAX_PART_BYTES');

  const caller = callerBody(request, bodyLimits(context));
  const writer = new AttachmentWriter(context, address, options.sessionToken);
  try {
    const upload = await fileUpload(caller.stream, id, type, context, declaredLength(request));
    try {
      const reply = await writer.createMedia(upload, partitionKey, `Attachment "${id}"`);
      if (request.signal.aborted) throw callerLeft();
      return replyAsResponse(reply);
    } finally {
      upload.release();
    }
  } catch (err) {
    const pending = await writer.rollBack();
    throw withPendingCleanup(rootCause(err, caller, request.signal.aborted), pending);
  }
}

async function fromJson(
  request: Request,
  address: DocumentAddress,
  context: RequestContext,
): Promise<Response> {
  const { settings, policy } = context;
  const options = callOptionsFrom(request);
  const partitionKey = policy.partitionKey(options.partitionKey);
  const bytes = await readSmallBody(
    request,
    bodyLimits(context, settings.limits.maxFieldBytes, 'MAX_FIELD_BYTES'),
  );
  const metadata = parseMetadata(decodeUtf8(bytes, 'The JSON body'), 'The JSON body');
  const writer = new AttachmentWriter(context, address, options.sessionToken);
  const reply = await writer.createMetadata(metadata, partitionKey, `Attachment "${metadata.id}"`);
  // The caller left before hearing of it: nobody will, so it is undone like any failed request's.
  if (request.signal.aborted) {
    const pending = await writer.rollBack();
    throw withPendingCleanup(callerLeft(), pending);
  }
  return replyAsResponse(reply);
}
