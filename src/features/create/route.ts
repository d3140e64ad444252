import { parseMetadata } from '../../attachments/metadata.js';
import { AttachmentWriter, withPendingCleanup } from '../../attachments/writer.js';
import type { DocumentAddress } from '../../cosmos/client.js';
import { decodeSlug } from '../../cosmos/ids.js';
import { callOptionsFrom, replyAsResponse } from '../../http/cosmos-replies.js';
import { BridgeError } from '../../http/errors.js';
import { callerBody, callerLeft, decodeUtf8, readSmallBody, rootCause } from '../../http/request-body.js';
import { tooLarge } from '../../multipart/measure.js';
import { documentAddress } from '../address.js';
import { bodyLimits } from '../body-limits.js';
import type { RequestContext, RouteParams } from '../context.js';
import { fileUpload } from './file-upload.js';
import { chooseId, idChoiceFromHeaders, type IdChoice } from './id-choice.js';
import { declaredLength, fromMultipart } from './multipart.js';

/** Longest Slug accepted: a 255-character id, every character percent-encoded UTF-8. */
const MAX_SLUG_CHARS = 255 * 12;

/**
 * `POST .../docs/{doc}/attachments`, by Content-Type: multipart/form-data (one attachment per part),
 * anything with a Slug header (raw media, as Cosmos DB itself takes it), or JSON (a metadata attachment).
 * Ids are the names given unless the request chooses upsert or unique ids (id-choice.ts).
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
  const choice = idChoiceFromHeaders(request.headers);
  if (mediaType === 'multipart/form-data')
    return fromMultipart(request, contentType, address, context, choice);
  // A Slug means raw media to Cosmos DB whatever the type, so a JSON file with a Slug is media too.
  if (slug !== null) {
    const type = mediaType === '' ? undefined : contentType;
    return fromRawMedia(request, type, slug, address, context, choice ?? 'name');
  }
  if (mediaType === 'application/json' || mediaType.endsWith('+json'))
    return fromJson(request, address, context, choice ?? 'name');
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
  choice: IdChoice,
): Promise<Response> {
  const { settings, policy } = context;
  if (slug.length > MAX_SLUG_CHARS) throw new BridgeError('InvalidHeader', 'The Slug header is too long.');
  const { id, upsert, properties } = chooseId(choice, decodeSlug(slug), 'Slug');
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
    upload.properties = properties;
    try {
      await writer.createMedia(upload, partitionKey, `Attachment "${id}"`, upsert);
      if (request.signal.aborted) throw callerLeft();
      const [reply] = await writer.commit();
      return replyAsResponse(reply!);
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
  choice: IdChoice,
): Promise<Response> {
  const { settings, policy } = context;
  const options = callOptionsFrom(request);
  const partitionKey = policy.partitionKey(options.partitionKey);
  const bytes = await readSmallBody(
    request,
    bodyLimits(context, settings.limits.maxFieldBytes, 'MAX_FIELD_BYTES'),
  );
  const metadata = parseMetadata(decodeUtf8(bytes, 'The JSON body'), 'The JSON body');
  const { id, upsert, properties } = chooseId(choice, metadata.id, 'attachment id');
  const writer = new AttachmentWriter(context, address, options.sessionToken);
  await writer.createMetadata({ ...metadata, ...properties, id }, partitionKey, `Attachment "${id}"`, {
    upsert,
  });
  try {
    // The caller left before hearing of it: nobody will, so it is undone like any failed request's.
    if (request.signal.aborted) throw callerLeft();
    const [reply] = await writer.commit();
    return replyAsResponse(reply!);
  } catch (err) {
    throw withPendingCleanup(err, await writer.rollBack());
  }
}
