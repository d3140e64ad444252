import { Readable, pipeline } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { CallOptions, CosmosClient, CosmosReply, DocumentAddress } from '../cosmos/client.js';
import { assertValidId, decodeSlug } from '../cosmos/ids.js';
import { parsePartitionKeyField, samePartitionKey, type PartitionKey } from '../cosmos/partition-key.js';
import { BridgeError, isCallerError, jsonResponse, type CallerError } from '../http/errors.js';
import { describeError, type Logger } from '../log.js';
import { MeasuringStream, tooLarge } from '../multipart/measure.js';
import { readMultipart, type FormPart } from '../multipart/parts.js';
import type { Settings } from '../settings.js';
import { callOptionsFrom, passedBackHeaders, replyAsResponse, upstreamError } from './cosmos-replies.js';

export interface RouteContext {
  cosmos: CosmosClient;
  settings: Settings;
  log: Logger;
}

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

interface Created {
  id: string;
  reply: CosmosReply;
}

async function fromMultipart(
  request: Request,
  contentType: string,
  address: DocumentAddress,
  context: RouteContext,
): Promise<Response> {
  const { settings, cosmos } = context;
  const options = callOptionsFrom(request);
  const headerKey = options.partitionKey;
  if (!request.body) throw new BridgeError('MalformedMultipart', 'The multipart body is empty.');

  const body = watchBody(request.body);
  const reader = readMultipart(body.stream, contentType, settings, () => callerLeft());

  const created: Created[] = [];
  const results: Record<string, unknown>[] = [];
  let partitionKey: PartitionKey | undefined = headerKey;
  try {
    for await (const part of reader) {
      if (part.type === 'field') {
        if (part.name === 'partitionKey') {
          partitionKey = partitionKeyFromField(part.value, headerKey, created.length > 0);
        } else if (part.name === 'metadata') {
          const { id, json } = parseMetadata(part.value, 'The metadata field');
          const reply = await cosmos.createAttachmentFromJson(address, json, { ...options, partitionKey });
          if (reply.status !== 201) throw upstreamError(reply, `Metadata attachment "${id}"`);
          created.push({ id, reply });
          results.push(resourceOf(reply));
        }
        // Other fields (a form's submit button, say) carry nothing for Cosmos DB and are ignored.
        continue;
      }
      const { id, reply, size, sha256 } = await uploadFilePart(
        part,
        address,
        { ...options, partitionKey },
        context,
      );
      created.push({ id, reply });
      results.push({ ...resourceOf(reply), size, sha256 });
    }
    if (results.length === 0) {
      throw new BridgeError('NoAttachments', 'The form has no file part and no metadata field.');
    }
    // The caller left after the last part: nobody will hear of these attachments, so undo them.
    if (request.signal.aborted) throw callerLeft();
    return jsonResponse(201, { attachments: results }, summaryHeaders(created));
  } catch (err) {
    // A part's upload that broke off because the form itself failed reports the form's failure.
    const formFailure = await reader.close();
    await rollBack(created, address, { ...options, partitionKey }, context);
    if (!isCallerError(err) && formFailure) throw formFailure;
    throw asCallerError(err, body.failed() || request.signal.aborted);
  }
}

async function uploadFilePart(
  part: Extract<FormPart, { type: 'file' }>,
  address: DocumentAddress,
  options: CallOptions,
  { cosmos, settings }: RouteContext,
): Promise<{ id: string; reply: CosmosReply; size: number; sha256: string }> {
  if (!part.filename) {
    part.stream.resume();
    throw new BridgeError(
      'MissingFilename',
      `The file part "${part.name}" has no file name to use as its id.`,
    );
  }
  const id = assertValidId(part.filename, `file name "${part.filename}"`);
  const meter = new MeasuringStream(settings.maxPartBytes);
  // Errors surface through the upstream call, which consumes `meter`.
  pipeline(part.stream, meter, () => {});
  const reply = await cosmos.createAttachmentFromStream(
    address,
    { id, contentType: part.mimeType, body: meter },
    options,
  );
  if (reply.status !== 201) throw upstreamError(reply, `File "${id}"`);
  await finished(meter);
  return { id, reply, size: meter.bytes, sha256: meter.sha256() };
}

async function fromRawMedia(
  request: Request,
  contentType: string | undefined,
  slug: string,
  address: DocumentAddress,
  { cosmos, settings, log }: RouteContext,
): Promise<Response> {
  const id = assertValidId(decodeSlug(slug), 'Slug');
  const options = callOptionsFrom(request);
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > settings.maxPartBytes) throw tooLarge(settings.maxPartBytes, 'MAX_PART_BYTES');

  const meter = new MeasuringStream(settings.maxPartBytes);
  const body = watchBody(request.body);
  pipeline(body.stream, meter, () => {});
  let reply: CosmosReply;
  try {
    reply = await cosmos.createAttachmentFromStream(
      address,
      { id, contentType: contentType ?? 'application/octet-stream', body: meter },
      options,
    );
  } catch (err) {
    throw asCallerError(err, body.failed() || request.signal.aborted);
  }
  if (reply.status === 201 && request.signal.aborted) {
    await rollBack([{ id, reply }], address, options, { cosmos, settings, log });
    throw callerLeft();
  }
  return replyAsResponse(reply);
}

async function fromJson(request: Request, address: DocumentAddress, { cosmos, settings }: RouteContext) {
  const options = callOptionsFrom(request);
  const text = await readText(request, settings.maxFieldBytes);
  const { json } = parseMetadata(text, 'The JSON body');
  return replyAsResponse(await cosmos.createAttachmentFromJson(address, json, options));
}

/**
 * A metadata attachment body: a JSON object with a valid string `id`. The text is forwarded as it
 * came, so numbers and custom properties reach Cosmos DB untouched.
 */
function parseMetadata(text: string, what: string): { id: string; json: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BridgeError('InvalidJson', `${what} is not valid JSON.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new BridgeError(
      'InvalidJson',
      `${what} must be a JSON object such as {"id","contentType","media"}.`,
    );
  }
  const id = (parsed as { id?: unknown }).id;
  if (typeof id !== 'string') throw new BridgeError('InvalidId', `${what} needs a string "id".`);
  return { id: assertValidId(id, 'attachment id'), json: text };
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

/** Deletes what this request created, newest first; a failure to undo is logged, never hidden. */
async function rollBack(
  created: Created[],
  address: DocumentAddress,
  options: CallOptions,
  { cosmos, log }: RouteContext,
): Promise<void> {
  for (const { id } of [...created].reverse()) {
    try {
      const reply = await cosmos.deleteAttachment(address, id, { ...options, signal: undefined });
      if (reply.status !== 204 && reply.status !== 404) {
        log.error('rollback: attachment not deleted', { ...address, attachment: id, status: reply.status });
      }
    } catch (err) {
      log.error('rollback: attachment not deleted', { ...address, attachment: id, ...describeError(err) });
    }
  }
}

function resourceOf(reply: CosmosReply): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(reply.body);
    if (typeof parsed === 'object' && parsed !== null) return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new BridgeError('UpstreamBadResponse', 'Cosmos DB answered 201 without a JSON resource.');
}

/** Headers for a multi-part answer: RU charges add up; the last session token and activity id win. */
function summaryHeaders(created: Created[]): Record<string, string> {
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

/** Reads a small body as UTF-8 text, refusing it as soon as it grows past `maxBytes`. */
async function readText(request: Request, maxBytes: number): Promise<string> {
  if (!request.body) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of request.body as AsyncIterable<Uint8Array>) {
      total += chunk.byteLength;
      if (total > maxBytes) {
        throw new BridgeError(
          'PayloadTooLarge',
          `The JSON body is larger than MAX_FIELD_BYTES (${maxBytes} bytes).`,
        );
      }
      chunks.push(chunk);
    }
  } catch (err) {
    throw asCallerError(err, true);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new BridgeError('InvalidJson', 'The JSON body is not valid UTF-8.');
  }
}

/** The request body as a Node stream, remembering whether it failed (the caller's connection broke). */
function watchBody(webBody: Request['body']): { stream: Readable; failed: () => boolean } {
  const stream = webBody ? Readable.fromWeb(webBody) : Readable.from([]);
  let failed = false;
  stream.on('error', () => {
    failed = true;
  });
  return { stream, failed: () => failed };
}

function callerLeft(): BridgeError {
  return new BridgeError('RequestAborted', 'The caller closed the request before it was complete.');
}

/** The caller-facing error for a failure; an unexpected one while the caller's body broke is the caller leaving. */
function asCallerError(err: unknown, callerGone: boolean): CallerError {
  if (isCallerError(err)) return err;
  if (callerGone) return callerLeft();
  throw err;
}
