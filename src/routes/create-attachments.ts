import { pipeline, type Readable } from 'node:stream';
import type { CallOptions, DocumentAddress } from '../cosmos/client.js';
import { assertValidId, decodeSlug } from '../cosmos/ids.js';
import { parsePartitionKeyField, samePartitionKey, type PartitionKey } from '../cosmos/partition-key.js';
import { BridgeError, jsonResponse } from '../http/errors.js';
import { callerBody, callerLeft, decodeUtf8, readSmallBody, rootCause } from '../http/request-body.js';
import { MeasuringStream, tooLarge } from '../multipart/measure.js';
import { readMultipart, type FormPart } from '../multipart/parts.js';
import { ReplayablePart } from '../multipart/replay.js';
import { AttachmentWriter, type RouteContext } from './attachment-writer.js';
import { callOptionsFrom, passedBackHeaders, replyAsResponse } from './cosmos-replies.js';
import { parseMetadata } from './metadata.js';

/** Longest Slug accepted: a 255-character id, every character percent-encoded UTF-8. */
const MAX_SLUG_CHARS = 255 * 12;

/**
 * `POST .../docs/{doc}/attachments`, by Content-Type: multipart/form-data (one attachment per part),
 * anything with a Slug header (raw media, as Cosmos DB itself takes it), or JSON (a metadata attachment).
 */
export async function createAttachments(
  request: Request,
  address: DocumentAddress,
  context: RouteContext,
): Promise<Response> {
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

async function fromMultipart(
  request: Request,
  contentType: string,
  address: DocumentAddress,
  context: RouteContext,
): Promise<Response> {
  const { settings, policy } = context;
  const options = callOptionsFrom(request);
  const headerKey = options.partitionKey;
  let partitionKey = policy.partitionKey(headerKey);
  const body = callerBody(request, settings.limits.maxRequestBytes);
  let reader: ReturnType<typeof readMultipart>;
  try {
    reader = readMultipart(body.stream, contentType, settings.limits, () => callerLeft());
  } catch (err) {
    body.stream.destroy();
    throw err;
  }
  const writer = new AttachmentWriter(context, address);
  const results: Record<string, unknown>[] = [];
  try {
    for await (const part of reader) {
      const partOptions = { ...options, partitionKey };
      if (part.type === 'field') {
        // busboy reads a part without a file name as a field; one that is not text was meant as a file.
        if (!/^(text\/|application\/json$)/.test(part.mimeType)) {
          throw new BridgeError(
            'MissingFilename',
            `The part "${part.name}" (${part.mimeType}) has no file name to use as its attachment id.`,
          );
        }
        if (part.name === 'partitionKey') {
          partitionKey = policy.partitionKey(
            partitionKeyFromField(part.value, headerKey, writer.created.length > 0),
          );
        } else if (part.name === 'metadata') {
          const metadata = parseMetadata(part.value, 'The metadata field');
          const reply = await writer.createMetadata(
            metadata,
            partOptions,
            `Metadata attachment "${metadata.id}"`,
          );
          results.push(resourceOf(reply.body));
        }
        // Other fields (a form's submit button, say) carry nothing for Cosmos DB and are ignored.
        continue;
      }
      results.push(await uploadFilePart(part, writer, partOptions, context));
    }
    if (results.length === 0) {
      throw new BridgeError('NoAttachments', 'The form has no file part and no metadata field.');
    }
    // The caller left after the last part: nobody will hear of these attachments, so undo them.
    if (request.signal.aborted) throw callerLeft();
    return jsonResponse(201, { attachments: results }, summaryHeaders(writer));
  } catch (err) {
    // A part's upload that broke off because the form itself failed reports the form's failure.
    const formFailure = await reader.close();
    await writer.rollBack();
    throw rootCause(err, body, request.signal.aborted, formFailure);
  }
}

async function uploadFilePart(
  part: Extract<FormPart, { type: 'file' }>,
  writer: AttachmentWriter,
  options: CallOptions,
  context: RouteContext,
): Promise<Record<string, unknown>> {
  const { settings } = context;
  if (!part.filename) {
    part.stream.resume();
    throw new BridgeError(
      'MissingFilename',
      `The file part "${part.name}" has no file name to use as its id.`,
    );
  }
  const id = assertValidId(part.filename, `file name "${part.filename}"`);
  const meter = new MeasuringStream(settings.limits.maxPartBytes);
  // Errors surface where `meter` is read: in the upstream call (or a replay).
  pipeline(part.stream, meter, () => {});
  const reply = await writer.createMedia(
    { id, contentType: part.mimeType, body: uploadBody(meter, context) },
    meter,
    options,
    `File "${id}"`,
  );
  return { ...resourceOf(reply.body), ...(await meter.measured()) };
}

/**
 * Cosmos DB may throttle a create: a part streams at once, and up to REPLAY_BUFFER_BYTES of it are
 * kept to send it again if need be (within REPLAY_MEMORY_BYTES for all parts in flight). Blob Storage uploads stage their blocks from buffers of their
 * own and retry those, so in blob mode the part just streams.
 */
function uploadBody(
  meter: MeasuringStream,
  { settings, blobs, replayMemory }: RouteContext,
): Readable | ReplayablePart {
  const limit = settings.upstream.replayBufferBytes;
  return blobs || limit === 0 ? meter : new ReplayablePart(meter, limit, replayMemory);
}

async function fromRawMedia(
  request: Request,
  contentType: string | undefined,
  slug: string,
  address: DocumentAddress,
  context: RouteContext,
): Promise<Response> {
  const { settings, policy } = context;
  if (slug.length > MAX_SLUG_CHARS) throw new BridgeError('InvalidHeader', 'The Slug header is too long.');
  const id = assertValidId(decodeSlug(slug), 'Slug');
  const callOptions = callOptionsFrom(request);
  const options = { ...callOptions, partitionKey: policy.partitionKey(callOptions.partitionKey) };
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > settings.limits.maxPartBytes) throw tooLarge(settings.limits.maxPartBytes, 'MAX_PART_BYTES');

  const caller = callerBody(request, settings.limits.maxRequestBytes);
  const meter = new MeasuringStream(settings.limits.maxPartBytes);
  pipeline(caller.stream, meter, () => {});
  const writer = new AttachmentWriter(context, address);
  try {
    const body = uploadBody(meter, context);
    const type = contentType ?? 'application/octet-stream';
    const reply = await writer.createMedia(
      { id, contentType: type, body },
      meter,
      options,
      `Attachment "${id}"`,
    );
    if (request.signal.aborted) throw callerLeft();
    return replyAsResponse(reply);
  } catch (err) {
    await writer.rollBack();
    throw rootCause(err, caller, request.signal.aborted);
  }
}

async function fromJson(
  request: Request,
  address: DocumentAddress,
  context: RouteContext,
): Promise<Response> {
  const { settings, policy } = context;
  const callOptions = callOptionsFrom(request);
  const options = { ...callOptions, partitionKey: policy.partitionKey(callOptions.partitionKey) };
  const bytes = await readSmallBody(request, settings.limits.maxFieldBytes, 'MAX_FIELD_BYTES');
  const metadata = parseMetadata(decodeUtf8(bytes, 'The JSON body'), 'The JSON body');
  const writer = new AttachmentWriter(context, address);
  return replyAsResponse(await writer.createMetadata(metadata, options, `Attachment "${metadata.id}"`));
}

function partitionKeyFromField(
  value: string,
  headerKey: PartitionKey | undefined,
  afterAttachments: boolean,
) {
  if (afterAttachments) {
    throw new BridgeError(
      'InvalidPartitionKey',
      'The partitionKey field must come before the files and metadata it applies to.',
    );
  }
  const key = parsePartitionKeyField(value);
  if (headerKey !== undefined && !samePartitionKey(key, headerKey)) {
    throw new BridgeError(
      'InvalidPartitionKey',
      'The partitionKey field and the x-ms-documentdb-partitionkey header disagree.',
    );
  }
  return key;
}

function resourceOf(body: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null) return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new BridgeError('UpstreamBadResponse', 'Cosmos DB answered 201 without a JSON resource.');
}

/** Headers for a multi-part answer: RU charges add up; the last session token and activity id win. */
function summaryHeaders(writer: AttachmentWriter): Record<string, string> {
  const created = writer.created;
  const last = created.at(-1);
  if (!last) return {};
  const headers = passedBackHeaders(last.reply);
  const charge = created.reduce(
    (sum, { reply }) => sum + (Number(reply.headers['x-ms-request-charge']) || 0),
    0,
  );
  headers['x-ms-request-charge'] = String(Math.round(charge * 100) / 100);
  if (created.length > 1) delete headers.etag;
  return headers;
}
