import type { CosmosReply, DocumentAddress } from '../../cosmos/client.js';
import { parsePartitionKeyField, samePartitionKey, type PartitionKey } from '../../cosmos/partition-key.js';
import { withPendingCleanup, AttachmentWriter } from '../../attachments/writer.js';
import { parseMetadata } from '../../attachments/metadata.js';
import { callOptionsFrom, passedBackHeaders } from '../../http/cosmos-replies.js';
import { BridgeError, jsonResponse } from '../../http/errors.js';
import { callerBody, callerLeft, rootCause } from '../../http/request-body.js';
import { readMultipart, type FormPart } from '../../multipart/parts.js';
import type { RequestContext } from '../context.js';
import { bodyLimits } from '../body-limits.js';
import { fileUpload } from './file-upload.js';
import { chooseId, combine, idChoiceFromField, type IdChoice } from './id-choice.js';

/**
 * `multipart/form-data`: every file part becomes an attachment, in order, streamed as it arrives; a
 * `metadata` field becomes a metadata attachment; a `partitionKey` field before them sets the key, and
 * an `idMode` (or `x-ms-documentdb-is-upsert`) field before them how ids are chosen. All or nothing:
 * when any part fails, what the request created is undone (an attachment an upsert replaced stays
 * replaced: the version it replaced is gone).
 */
export async function fromMultipart(
  request: Request,
  contentType: string,
  address: DocumentAddress,
  context: RequestContext,
  headerChoice: IdChoice | undefined,
): Promise<Response> {
  const { settings, policy } = context;
  const options = callOptionsFrom(request);
  const headerKey = options.partitionKey;
  let partitionKey = policy.partitionKey(headerKey);
  const body = callerBody(request, bodyLimits(context));
  let reader: ReturnType<typeof readMultipart>;
  try {
    reader = readMultipart(
      body.stream,
      contentType,
      settings.limits,
      () => callerLeft(),
      declaredLength(request),
    );
  } catch (err) {
    body.stream.destroy();
    throw err;
  }
  const writer = new AttachmentWriter(context, address, options.sessionToken);
  /** What each attachment's answer adds to its resource (a file's size and SHA-256), in order. */
  const results: Record<string, unknown>[] = [];
  let choice = headerChoice;
  try {
    for await (const part of reader) {
      if (part.type === 'field') {
        const fieldChoice = idChoiceFromField(part.name, part.value);
        if (part.name === 'partitionKey') {
          partitionKey = policy.partitionKey(
            partitionKeyFromField(part.value, headerKey, results.length > 0),
          );
        } else if (fieldChoice !== undefined) {
          if (results.length > 0) {
            throw new BridgeError(
              'BadRequest',
              `The ${part.name} field must come before the files and metadata it applies to.`,
            );
          }
          choice = combine(headerChoice, fieldChoice);
        } else if (part.name === 'metadata') {
          const metadata = parseMetadata(part.value, 'The metadata field');
          const { id, upsert, properties } = chooseId(choice ?? 'name', metadata.id, 'attachment id');
          await writer.createMetadata(
            { ...metadata, ...properties, id },
            partitionKey,
            `Metadata attachment "${id}"`,
            {
              upsert,
            },
          );
          results.push({});
        }
        // Other fields (a form's submit button, say) carry nothing for Cosmos DB and are ignored.
        continue;
      }
      results.push(await uploadFilePart(part, writer, partitionKey, context, choice ?? 'name'));
    }
    if (results.length === 0) {
      throw new BridgeError('NoAttachments', 'The form has no file part and no metadata field.');
    }
    // The caller left after the last part: nobody will hear of these attachments, so undo them.
    if (request.signal.aborted) throw callerLeft();
    const replies = await writer.commit();
    const attachments = replies.map((reply, i) => ({ ...resourceOf(reply.body), ...results[i] }));
    // 201 when the form created anything; 200 when every part replaced an attachment (upsert).
    const created = replies.some((reply) => reply.status === 201);
    return jsonResponse(created ? 201 : 200, { attachments }, summaryHeaders(replies));
  } catch (err) {
    // A part's upload that broke off because the form itself failed reports the form's failure.
    const formFailure = await reader.close();
    const pending = await writer.rollBack();
    throw withPendingCleanup(rootCause(err, body, request.signal.aborted, formFailure), pending);
  }
}

async function uploadFilePart(
  part: Extract<FormPart, { type: 'file' }>,
  writer: AttachmentWriter,
  partitionKey: PartitionKey | undefined,
  context: RequestContext,
  choice: IdChoice,
): Promise<Record<string, unknown>> {
  if (!part.filename) {
    part.stream.resume();
    throw new BridgeError(
      'MissingFilename',
      `The file part "${part.name}" has no file name to use as its id.`,
    );
  }
  const { id, upsert, properties } = chooseId(choice, part.filename, `file name "${part.filename}"`);
  const upload = await fileUpload(part.stream, id, part.mimeType, context, part.maxBytes);
  upload.properties = properties;
  try {
    await writer.createMedia(upload, partitionKey, `File "${id}"`, upsert);
    return { ...(await upload.measured()) };
  } finally {
    upload.release();
  }
}

/** The request's Content-Length, when it declared one. */
export function declaredLength(request: Request): number | undefined {
  const declared = Number(request.headers.get('content-length') ?? NaN);
  return Number.isSafeInteger(declared) && declared >= 0 ? declared : undefined;
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
function summaryHeaders(replies: readonly CosmosReply[]): Record<string, string> {
  const last = replies.at(-1);
  if (!last) return {};
  const headers = passedBackHeaders(last);
  const charge = replies.reduce((sum, reply) => sum + (Number(reply.headers['x-ms-request-charge']) || 0), 0);
  headers['x-ms-request-charge'] = String(Math.round(charge * 100) / 100);
  if (replies.length > 1) delete headers.etag;
  return headers;
}
