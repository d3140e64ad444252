import { ORIGINAL_NAME_PROPERTY } from '../../attachments/ids.js';
import { parseMetadata, WEBHOOK_ID_PROPERTY } from '../../attachments/metadata.js';
import { UPLOAD_ID_PROPERTY, type FoundAttachment } from '../../attachments/record.js';
import { AttachmentWriter, withPendingCleanup, type FileUpload } from '../../attachments/writer.js';
import { decodeSlug } from '../../cosmos/ids.js';
import { replyAsResponse, upstreamError } from '../../http/cosmos-replies.js';
import { BridgeError, UpstreamStatusError } from '../../http/errors.js';
import { callerBody, callerLeft, decodeUtf8, readSmallBody, rootCause } from '../../http/request-body.js';
import { tooLarge } from '../../multipart/measure.js';
import { readMultipart } from '../../multipart/parts.js';
import { bodyLimits } from '../body-limits.js';
import type { RequestContext, RouteParams } from '../context.js';
import { fileUpload } from '../create/file-upload.js';
import { attachmentTarget, type AttachmentsTarget } from '../target.js';
import { currentVersion, preconditionFailed } from './current.js';

type Target = AttachmentsTarget & { id: string };

/**
 * `PUT .../attachments/{id}`, with If-Match (412 when the attachment is at another version):
 * - JSON: new properties (a metadata attachment body with the same `id`). For media the bridge stored,
 *   `media`, `size` and `sha256` describe those bytes and stay as they are.
 * - multipart/form-data with one file part, or a raw body with its Content-Type: new media. Blob mode
 *   writes a new blob, points the attachment at it, then removes the old blob (only one its previous
 *   upload wrote), so the attachment never points at a missing blob; managed media is replaced by
 *   Cosmos DB's own "Replace an Attachment" with the bytes. Custom properties stay.
 * 200 with the new resource.
 */
export async function replaceAttachment(
  request: Request,
  params: RouteParams,
  context: RequestContext,
): Promise<Response> {
  const target = attachmentTarget(request, params, context);
  const contentType = request.headers.get('content-type') ?? '';
  const mediaType = contentType.split(';', 1)[0]!.trim().toLowerCase();
  const slug = request.headers.get('slug');
  if (slug !== null && decodeSlug(slug) !== target.id) {
    throw new BridgeError(
      'InvalidId',
      'The Slug must name the attachment being replaced: ids cannot change.',
    );
  }
  if (slug === null && (mediaType === 'application/json' || mediaType.endsWith('+json'))) {
    return replaceProperties(request, target, context);
  }
  const current = await currentVersion(request, target, context);
  if (mediaType === 'multipart/form-data')
    return replaceFromForm(request, contentType, target, current, context);
  return replaceFromBody(
    request,
    mediaType === '' ? 'application/octet-stream' : contentType,
    target,
    current,
    context,
  );
}

async function replaceProperties(
  request: Request,
  target: Target,
  context: RequestContext,
): Promise<Response> {
  const { settings, policy, cosmos, media } = context;
  const bytes = await readSmallBody(
    request,
    bodyLimits(context, settings.limits.maxFieldBytes, 'MAX_FIELD_BYTES'),
  );
  const metadata = parseMetadata(decodeUtf8(bytes, 'The JSON body'), 'The JSON body');
  const subject = `Attachment "${target.id}"`;
  if (metadata.id !== target.id)
    throw new BridgeError(
      'InvalidId',
      `${subject}: the body's id must be the attachment's; ids cannot change.`,
    );
  policy.contentType(metadata.contentType, subject);
  const current = await currentVersion(request, target, context);
  const { resource } = current;
  const properties: Record<string, unknown> = { ...metadata };
  const stored = await media.locate(resource, { address: target.address, partitionKey: target.partitionKey });
  if (stored) {
    // The bytes stay: what describes them stays with them.
    for (const name of ['media', 'size', 'sha256'] as const) {
      if (name in metadata && metadata[name] !== resource[name]) {
        throw new BridgeError(
          'InvalidJson',
          `${subject}: "${name}" describes the media the bridge stored; send new media (a file) to change it.`,
        );
      }
      if (resource[name] !== undefined) properties[name] = resource[name];
    }
  }
  // What the bridge recorded on it (its upload mark, a webhook delivery id) stays too.
  for (const name of [UPLOAD_ID_PROPERTY, WEBHOOK_ID_PROPERTY]) {
    if (resource[name] !== undefined) properties[name] = resource[name];
  }
  const reply = await cosmos.replaceAttachment(target.address, target.id, JSON.stringify(properties), {
    ...target.options,
    ifMatch: current.etag,
  });
  if (reply.status === 412) throw preconditionFailed(target.id);
  if (reply.status !== 200) throw upstreamError(reply, subject);
  return replyAsResponse(reply);
}

async function replaceFromBody(
  request: Request,
  contentType: string,
  target: Target,
  current: FoundAttachment,
  context: RequestContext,
): Promise<Response> {
  const { settings } = context;
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > settings.limits.maxPartBytes) throw tooLarge(settings.limits.maxPartBytes, 'MAX_PART_BYTES');
  const caller = callerBody(request, bodyLimits(context));
  const writer = new AttachmentWriter(context, target.address, target.options.sessionToken);
  try {
    const upload = await fileUpload(caller.stream, target.id, contentType, context);
    try {
      return await replaced(writer, upload, target, current);
    } finally {
      upload.release();
    }
  } catch (err) {
    throw withPendingCleanup(rootCause(err, caller, request.signal.aborted), await writer.rollBack());
  }
}

/** The form's first file part is the new media; a form with another file part after it is refused (400). */
async function replaceFromForm(
  request: Request,
  contentType: string,
  target: Target,
  current: FoundAttachment,
  context: RequestContext,
): Promise<Response> {
  const body = callerBody(request, bodyLimits(context));
  let reader: ReturnType<typeof readMultipart>;
  try {
    reader = readMultipart(body.stream, contentType, context.settings.limits, () => callerLeft());
  } catch (err) {
    body.stream.destroy();
    throw err;
  }
  const writer = new AttachmentWriter(context, target.address, target.options.sessionToken);
  let answer: Response | undefined;
  try {
    for await (const part of reader) {
      if (part.type === 'field') continue;
      if (answer) {
        part.stream.resume();
        throw new BridgeError(
          'BadRequest',
          `The form has more than one file part: attachment "${target.id}" was replaced with the first; the others were not stored.`,
        );
      }
      const upload = await fileUpload(part.stream, target.id, part.mimeType, context);
      // An id derived from a file name keeps the name of the file it now holds.
      if (part.filename && typeof current.resource[ORIGINAL_NAME_PROPERTY] === 'string') {
        upload.properties = { [ORIGINAL_NAME_PROPERTY]: part.filename };
      }
      try {
        answer = await replaced(writer, upload, target, current);
      } finally {
        upload.release();
      }
    }
    if (!answer)
      throw new BridgeError('NoAttachments', 'The form has no file part to replace the media with.');
    return answer;
  } catch (err) {
    const formFailure = await reader.close();
    throw withPendingCleanup(
      rootCause(err, body, request.signal.aborted, formFailure),
      await writer.rollBack(),
    );
  }
}

/** The media replace itself; a caller that leaves meanwhile changes nothing: the old bytes are gone either way. */
async function replaced(
  writer: AttachmentWriter,
  upload: FileUpload,
  target: Target,
  current: FoundAttachment,
): Promise<Response> {
  try {
    const reply = await writer.replaceMedia(
      upload,
      target.partitionKey,
      current,
      `Attachment "${target.id}"`,
    );
    return replyAsResponse(reply);
  } catch (err) {
    // Changed between the read and the replace: the If-Match no longer holds.
    if (err instanceof UpstreamStatusError && err.status === 412) throw preconditionFailed(target.id);
    throw err;
  }
}
