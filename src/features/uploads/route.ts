import { randomBytes } from 'node:crypto';
import { createSHA256, type IHasher } from 'hash-wasm';
import { newUploadId } from '../../attachments/record.js';
import { callOptionsFrom, upstreamError } from '../../http/cosmos-replies.js';
import { toCallerError } from '../../http/error-edge.js';
import { BridgeError, errorResponse, jsonResponse } from '../../http/errors.js';
import { callerBody, rootCause } from '../../http/request-body.js';
import { blobNameFor } from '../../media/blob.js';
import { documentAddress } from '../address.js';
import { bodyLimits } from '../body-limits.js';
import type { RequestContext, RouteHandler, RouteParams } from '../context.js';
import { receiveChunk } from './chunk.js';
import { complete } from './completion.js';
import { ownerOf, sameOwner } from './identity.js';
import { attachmentIdFrom } from './ids.js';
import { UploadLock } from './lock.js';
import {
  byteCount,
  CHUNK_TYPE,
  effectiveMethod,
  httpDate,
  metadataText,
  optionsResponse,
  parseChecksum,
  parseUploadMetadata,
  requireTusVersion,
  tusHeaders,
} from './protocol.js';
import {
  blockId,
  isExpired,
  isUploadId,
  recordedBlocks,
  type CompletedAttachment,
  type UploadInfo,
} from './state.js';
import { uploadStore, UploadStore, type StoredInfo } from './storage.js';

/** Requests whose body this feature has taken to read: the rest are drained after an early answer. */
const bodiesTaken = new WeakSet<Request>();

/**
 * Every tus answer carries Tus-Resumable and the exposed headers, errors included; a body the
 * request was refused before reading is drained (briefly) so the caller can read the answer.
 */
function tus(handler: RouteHandler): RouteHandler {
  return async (request, params, context) => {
    let response: Response;
    try {
      response = await handler(request, params, context);
    } catch (err) {
      const failure = toCallerError(err);
      if (!failure) throw err;
      discardBody(request, context);
      response = errorResponse(failure);
    }
    for (const [name, value] of Object.entries(tusHeaders())) response.headers.set(name, value);
    return response;
  };
}

function takeBody(request: Request, context: RequestContext, maxBytes: number, limitName: string) {
  bodiesTaken.add(request);
  return callerBody(request, bodyLimits(context, maxBytes, limitName));
}

function discardBody(request: Request, context: RequestContext): void {
  if (request.body === null || bodiesTaken.has(request)) return;
  // Destroying the capped stream drains what the caller still sends, then cancels it.
  takeBody(
    request,
    context,
    context.settings.uploads.maxPatchBytes,
    'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT',
  ).stream.destroy();
}

/**
 * `POST .../docs/{doc}/attachments/uploads` (tus creation, creation-with-upload, creation-defer-length)
 * and `OPTIONS` there. Everything an ordinary upload checks is checked here, before any byte is taken:
 * the target, the partition claim, the content type, the size and the id.
 */
export const createUpload: RouteHandler = tus(async (request, params, context) => {
  const { settings, policy } = context;
  if (request.method === 'OPTIONS') return optionsResponse(settings.uploads);
  requireTusVersion(request);
  const url = new URL(request.url);
  const address = documentAddress(params, settings);
  const partitionKey = policy.partitionKey(callOptionsFrom(request).partitionKey);
  if (request.headers.get('upload-concat') !== null) {
    throw new BridgeError(
      'BadRequest',
      'Concatenation is not offered here (see Tus-Extension); send one upload.',
    );
  }
  const length = byteCount(request, 'upload-length');
  const deferred = request.headers.get('upload-defer-length');
  if (deferred !== null && deferred.trim() !== '1')
    throw new BridgeError('BadRequest', 'Upload-Defer-Length must be 1.');
  if ((length === undefined) === (deferred === null)) {
    throw new BridgeError('BadRequest', 'Send either Upload-Length or Upload-Defer-Length: 1.');
  }
  if (length !== undefined && length > settings.uploads.maxUploadBytes)
    throw tooLarge(settings.uploads.maxUploadBytes);
  const metadata = request.headers.get('upload-metadata');
  const pairs = parseUploadMetadata(metadata);
  const { id, properties, checkTaken } = attachmentIdFrom(pairs);
  const contentType = metadataText(pairs, 'filetype') || 'application/octet-stream';
  policy.contentType(contentType, `Attachment "${id}"`);
  const bodyType = mediaType(request.headers.get('content-type'));
  const declared = declaredLength(request);
  const withUpload = bodyType === CHUNK_TYPE;
  if (!withUpload && bodyType !== '' && declared !== 0) {
    throw new BridgeError(
      'UnsupportedMediaType',
      `Bytes sent with the creation request must be ${CHUNK_TYPE}.`,
    );
  }
  if (checkTaken) {
    // A taken name would only fail at the end: say so before any byte is sent.
    const reply = await context.cosmos.readAttachment(address, id, { partitionKey });
    if (reply.status === 200) {
      throw new BridgeError(
        'Conflict',
        `Attachment "${id}" exists already; choose another name or set uniqueId.`,
      );
    }
    if (reply.status !== 404) throw upstreamError(reply, `Attachment "${id}"`);
  }
  const store = uploadStore(settings);
  const uploadId = newUploadId();
  const now = Date.now();
  const staging = settings.media.store === 'blob' ? 'media' : 'uploads';
  const info: UploadInfo = {
    v: 1,
    id: uploadId,
    owner: ownerOf(request, url, context.caller, settings.uploads.ownerKey),
    createdAt: now,
    expiresAt: now + settings.uploads.expirySeconds * 1000,
    length,
    metadata: metadata ?? undefined,
    target: { address, partitionKey, id, contentType, properties },
    staging,
    blob:
      staging === 'media' ? blobNameFor(address, partitionKey, id, uploadId) : UploadStore.dataName(uploadId),
    segments: [],
    offset: 0,
    hash: undefined,
  };
  const etag = await store.create(info);
  const prefix = url.pathname.replace(
    /\/dbs\/[^/]+\/colls\/[^/]+\/docs\/[^/]+\/attachments\/uploads\/?$/,
    '',
  );
  const location = `${prefix}/uploads/${uploadId}`;
  const headers: Record<string, string> = { location };
  if (withUpload || length === 0) {
    const outcome = await append(request, { info, etag }, context, store, prefix, 0, !withUpload);
    Object.assign(headers, outcome.headers);
  } else {
    headers['upload-expires'] = httpDate(info.expiresAt);
  }
  context.log.info('resumable upload created', {
    upload: uploadId,
    attachment: id,
    length: length ?? 'deferred',
  });
  return new Response(null, { status: 201, headers });
});

/**
 * `/uploads/{uploadId}`: HEAD (offset), PATCH (bytes), DELETE (termination), GET (the upload and, once
 * complete, its attachment), OPTIONS; POST with X-HTTP-Method-Override for clients that need it. Only
 * the creator reaches an upload: anyone else, like an unknown id, gets 404.
 */
export const serveUpload: RouteHandler = tus(async (request, params, context) => {
  const { settings } = context;
  const method = effectiveMethod(request);
  if (method === 'OPTIONS') return optionsResponse(settings.uploads);
  if (method !== 'GET') requireTusVersion(request);
  const url = new URL(request.url);
  const uploadId = params.uploadId ?? '';
  const store = uploadStore(settings);
  const owner = ownerOf(request, url, context.caller, settings.uploads.ownerKey);
  const stored = isUploadId(uploadId) ? await store.read(uploadId) : undefined;
  if (!stored || !sameOwner(stored.info.owner, owner)) throw new BridgeError('NotFound', 'No such upload.');
  if (isExpired(stored.info)) throw new BridgeError('NotFound', 'The upload expired.');
  const prefix = url.pathname.replace(/\/uploads\/[^/]+\/?$/, '');
  const { info } = stored;
  switch (method) {
    case 'HEAD':
      return new Response(null, {
        status: 200,
        headers: { ...stateHeaders(info), 'cache-control': 'no-store' },
      });
    case 'GET':
      return jsonResponse(200, describe(info, prefix), { 'cache-control': 'no-store' });
    case 'PATCH': {
      const outcome = await append(
        request,
        stored,
        context,
        store,
        prefix,
        byteCount(request, 'upload-offset'),
      );
      return new Response(null, { status: 204, headers: outcome.headers });
    }
    case 'DELETE':
      await terminate(info, store, context);
      return new Response(null, { status: 204 });
    default:
      throw new BridgeError('MethodNotAllowed', 'An upload takes HEAD, PATCH, DELETE, GET and OPTIONS.', {
        allow: 'HEAD, PATCH, DELETE, GET, OPTIONS, POST',
      });
  }
});

/**
 * One chunk of bytes at `offset`: checked against the state (409 for the wrong offset), under the
 * upload's lock (423 while another request holds it), streamed into staged blocks, recorded block by
 * block; when it completes the upload, the attachment is created before the answer.
 */
async function append(
  request: Request,
  stored: StoredInfo,
  context: RequestContext,
  store: UploadStore,
  prefix: string,
  offset: number | undefined,
  noBody = false,
): Promise<{ headers: Record<string, string> }> {
  const { settings } = context;
  if (!noBody && mediaType(request.headers.get('content-type')) !== CHUNK_TYPE) {
    throw new BridgeError('UnsupportedMediaType', `A PATCH body must be ${CHUNK_TYPE}.`);
  }
  if (offset === undefined) throw new BridgeError('InvalidHeader', 'Upload-Offset is required.');
  const checksum = parseChecksum(request.headers.get('upload-checksum'));
  const newLength = byteCount(request, 'upload-length');
  const declared = declaredLength(request);
  if (declared !== undefined && declared > settings.uploads.maxPatchBytes) {
    throw new BridgeError(
      'PayloadTooLarge',
      `A PATCH may carry at most FUNCTIONS_REQUEST_BODY_SIZE_LIMIT (${settings.uploads.maxPatchBytes} bytes); send smaller chunks.`,
    );
  }
  check(stored.info, offset, newLength, declared, settings.uploads.maxUploadBytes);
  if (stored.info.completed) return { headers: completedHeaders(stored.info, prefix) };
  const lock = await UploadLock.acquire(store, stored.info.id, context.log);
  try {
    // What another request may have written before the lock was taken.
    const fresh = await store.read(stored.info.id);
    if (!fresh) throw new BridgeError('NotFound', 'No such upload.');
    check(fresh.info, offset, newLength, declared, settings.uploads.maxUploadBytes);
    if (fresh.info.completed) return { headers: completedHeaders(fresh.info, prefix) };
    let current = fresh;
    const save = async (info: UploadInfo) => {
      current = { info, etag: await store.write(info, current.etag, lock.leaseId) };
    };
    if (newLength !== undefined && current.info.length === undefined) {
      await save({ ...current.info, length: newLength });
    }
    const { info } = current;
    const remaining = info.length === undefined ? undefined : info.length - offset;
    const hasher = await hasherAt(info);
    const tag = randomBytes(8).toString('hex');
    const body = takeBody(
      noBody ? new Request('http://localhost/') : request,
      context,
      Math.min(settings.uploads.maxPatchBytes, remaining ?? Number.MAX_SAFE_INTEGER),
      remaining !== undefined && remaining < settings.uploads.maxPatchBytes
        ? 'Upload-Length'
        : 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT',
    );
    const received = await receiveChunk(body.stream, {
      data: await store.data(info),
      tag,
      hasher,
      checksum,
      remaining,
      lost: lock.lost,
      record: async (blocks, bytes, hash) => {
        const segments = current.info.segments.map((segment) => ({ ...segment }));
        if (segments.at(-1)?.tag !== tag) segments.push({ tag, blocks: 0, bytes: 0 });
        const last = segments.at(-1)!;
        last.blocks += blocks;
        last.bytes += bytes;
        await save({
          ...current.info,
          segments,
          offset: current.info.offset + bytes,
          hash,
          expiresAt: Date.now() + settings.uploads.expirySeconds * 1000,
        });
      },
    });
    if (received.failure !== undefined) throw rootCause(received.failure, body, request.signal.aborted);
    const length = current.info.length;
    if (length !== undefined && current.info.offset + (received.final?.bytes ?? 0) === length) {
      const blocks = recordedBlocks(current.info.segments);
      if (received.final) blocks.push(blockId(tag, received.final.blocks - 1));
      const { completed } = await complete(
        { info: current.info, etag: current.etag, lock, blocks, hasher },
        context,
        store,
      );
      context.log.info('resumable upload completed', {
        upload: info.id,
        attachment: info.target.id,
        size: length,
      });
      return { headers: completedHeaders({ ...current.info, offset: length, completed }, prefix) };
    }
    return { headers: stateHeaders(current.info) };
  } finally {
    await lock.release();
  }
}

/** The checks a PATCH must pass against the state, before and again under the lock. */
function check(
  info: UploadInfo,
  offset: number,
  newLength: number | undefined,
  declared: number | undefined,
  maxUploadBytes: number,
): void {
  if (newLength !== undefined) {
    if (info.length !== undefined && newLength !== info.length) {
      throw new BridgeError('BadRequest', 'Upload-Length cannot change once it is set.');
    }
    if (newLength > maxUploadBytes) throw tooLarge(maxUploadBytes);
    if (newLength < offset) throw new BridgeError('BadRequest', 'Upload-Length is smaller than the offset.');
  }
  if (info.completed) {
    if (offset === info.length && (declared ?? 0) === 0) return;
    throw new BridgeError('Conflict', 'The upload is complete.');
  }
  if (offset !== info.offset) {
    throw new BridgeError(
      'Conflict',
      `Upload-Offset is ${offset}, but the upload is at ${info.offset}; send from there.`,
    );
  }
  const length = newLength ?? info.length;
  if (length !== undefined && declared !== undefined && offset + declared > length) {
    throw new BridgeError('PayloadTooLarge', 'The chunk goes past Upload-Length.');
  }
}

/** SHA-256 of the upload so far, continued from its saved state; undefined when that cannot be had. */
async function hasherAt(info: UploadInfo): Promise<IHasher | undefined> {
  const hasher = await createSHA256();
  hasher.init();
  if (info.offset === 0) return hasher;
  if (info.hash === undefined) return undefined;
  try {
    hasher.load(Buffer.from(info.hash, 'base64'));
    return hasher;
  } catch {
    // Saved by an incompatible version of hash-wasm: completion reads the bytes back instead.
    return undefined;
  }
}

/** Termination: the staged bytes and the state go; an attachment already made stays (it is the caller's). */
async function terminate(info: UploadInfo, store: UploadStore, context: RequestContext): Promise<void> {
  const lock = await UploadLock.acquire(store, info.id, context.log);
  try {
    await store.removeData(info);
    await store.remove(info.id, lock.leaseId);
  } finally {
    await lock.release();
  }
  context.log.info('resumable upload terminated', { upload: info.id });
}

function stateHeaders(info: UploadInfo): Record<string, string> {
  return {
    'upload-offset': String(info.offset),
    ...(info.length === undefined
      ? { 'upload-defer-length': '1' }
      : { 'upload-length': String(info.length) }),
    ...(info.metadata === undefined ? {} : { 'upload-metadata': info.metadata }),
    ...(info.completed ? {} : { 'upload-expires': httpDate(info.expiresAt) }),
  };
}

/**
 * A complete upload's answer: the offset, where the attachment is read (Content-Location, the read
 * routes), and the attachment itself as a multipart upload reports it (X-Attachment, base64 JSON:
 * a 204 has no body).
 */
function completedHeaders(info: UploadInfo, prefix: string): Record<string, string> {
  const completed = info.completed as CompletedAttachment;
  return {
    ...stateHeaders(info),
    'content-location': attachmentPath(info, prefix),
    'x-attachment': Buffer.from(JSON.stringify(completed.attachment)).toString('base64'),
  };
}

function attachmentPath({ target }: UploadInfo, prefix: string): string {
  const { db, coll, doc } = target.address;
  const enc = encodeURIComponent;
  return `${prefix}/dbs/${enc(db)}/colls/${enc(coll)}/docs/${enc(doc)}/attachments/${enc(target.id)}`;
}

/** GET: the upload as JSON, with its attachment once complete. */
function describe(info: UploadInfo, prefix: string): Record<string, unknown> {
  return {
    id: info.id,
    offset: info.offset,
    length: info.length ?? null,
    expires: info.completed ? null : new Date(info.expiresAt).toISOString(),
    complete: info.completed !== undefined,
    attachmentId: info.target.id,
    ...(info.completed
      ? { attachment: info.completed.attachment, location: attachmentPath(info, prefix) }
      : {}),
  };
}

function mediaType(value: string | null): string {
  return (value ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

function declaredLength(request: Request): number | undefined {
  const raw = request.headers.get('content-length');
  if (raw === null) return undefined;
  const value = Number(raw);
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

function tooLarge(max: number): BridgeError {
  return new BridgeError('PayloadTooLarge', `The upload is larger than MAX_UPLOAD_BYTES (${max} bytes).`);
}

export type { RouteParams };
