import { randomBytes } from 'node:crypto';
import { newUploadId } from '../../attachments/record.js';
import { callOptionsFrom, upstreamError } from '../../http/cosmos-replies.js';
import { toCallerError } from '../../http/error-edge.js';
import { BridgeError, errorResponse, jsonResponse } from '../../http/errors.js';
import { callerBody, rootCause } from '../../http/request-body.js';
import { blobNameFor } from '../../media/blob.js';
import { documentAddress } from '../address.js';
import { bodyLimits } from '../body-limits.js';
import type { RequestContext, RouteHandler, RouteParams } from '../context.js';
import { receiveChunk, type StagedBlocks } from './chunk.js';
import { beginCompletion, finish } from './finish.js';
import { hasherAt } from './hashing.js';
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
  isExpired,
  isUploadId,
  phaseOf,
  withBlocks,
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
  const { id, properties, upsert, checkTaken } = attachmentIdFrom(pairs, request.headers);
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
        `Attachment "${id}" exists already; choose another name, or the id choice unique or upsert.`,
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
    target: { address, partitionKey, id, contentType, properties, upsert: upsert || undefined },
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
  const phase = phaseOf(info);
  switch (method) {
    case 'HEAD':
      if (phase === 'failed') throw gone(info);
      return new Response(null, {
        status: 200,
        headers: { ...stateHeaders(info), 'cache-control': 'no-store' },
      });
    case 'GET':
      return describe(info, prefix);
    case 'PATCH': {
      if (phase === 'failed') throw gone(info);
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
      if (phase === 'completing') {
        throw new BridgeError(
          'Locked',
          'The upload is being completed; GET it for its attachment, or try again once that is done.',
          { 'retry-after': '2' },
        );
      }
      await terminate(stored, store, context);
      return new Response(null, { status: 204 });
    default:
      throw new BridgeError('MethodNotAllowed', 'An upload takes HEAD, PATCH, DELETE, GET and OPTIONS.', {
        allow: 'HEAD, PATCH, DELETE, GET, OPTIONS, POST',
      });
  }
});

/**
 * One chunk of bytes at `offset`: checked against the state (409 for the wrong offset), under the
 * upload's lock (423 while another request holds it), streamed into staged blocks and recorded when
 * the request ends (and every CHECKPOINT_MS while a long one streams). When it completes the upload,
 * the completion begins (finish.ts) and the answer carries the attachment if it is made within
 * UPLOAD_COMPLETION_WAIT_SECONDS. A complete or completing upload is answered from its state, without
 * the lock.
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
  if (allIn(stored.info)) return { headers: allInHeaders(stored.info, prefix) };
  const held = await UploadLock.acquire(store, stored, settings.uploads.lockSeconds, context.log);
  const { lock } = held;
  let handedOver = false;
  try {
    let current = held.stored;
    check(current.info, offset, newLength, declared, settings.uploads.maxUploadBytes);
    if (allIn(current.info)) return { headers: allInHeaders(current.info, prefix) };
    const save = async (info: UploadInfo) => {
      current = { info, etag: await store.write(info, current.etag, lock.leaseId) };
    };
    if (newLength !== undefined && current.info.length === undefined) {
      await save({ ...current.info, length: newLength });
    }
    const { info } = current;
    const remaining = info.length === undefined ? undefined : info.length - offset;
    const tag = randomBytes(8).toString('hex');
    const record = async (staged: StagedBlocks) => {
      if (staged.blocks === 0) return;
      await save({
        ...current.info,
        segments: withBlocks(current.info.segments, tag, staged.blocks, staged.bytes),
        offset: current.info.offset + staged.bytes,
        hash: staged.hash,
        expiresAt: Date.now() + settings.uploads.expirySeconds * 1000,
      });
    };
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
      hasher: await hasherAt(info),
      checksum,
      remaining,
      lost: lock.lost,
      checkpoint: record,
    });
    const length = current.info.length;
    const arrived = received.pending.bytes + (received.final?.bytes ?? 0);
    if (received.failure !== undefined || length === undefined || current.info.offset + arrived !== length) {
      try {
        // What fully arrived counts, even when the request broke off.
        await record(received.pending);
      } catch (err) {
        if (received.failure === undefined) throw err;
      }
      if (received.failure !== undefined) throw rootCause(received.failure, body, request.signal.aborted);
      return { headers: stateHeaders(current.info) };
    }
    const begun = await beginCompletion(current, lock, { tag, ...received }, context, store);
    handedOver = true;
    return await answerCompletion(begun, lock, context, store, prefix);
  } finally {
    if (!handedOver) await lock.release();
  }
}

/**
 * Runs the completion and answers with the attachment if it is made within the wait; otherwise the
 * answer says it is being made (the run goes on, and the queued task stands behind it). A failure
 * for good is the answer's error; one for now leaves the upload completing, for the task.
 */
async function answerCompletion(
  begun: StoredInfo,
  lock: UploadLock,
  context: RequestContext,
  store: UploadStore,
  prefix: string,
): Promise<{ headers: Record<string, string> }> {
  const run = finish(begun, lock, context, store, { lastAttempt: false, by: 'request' });
  let timer: NodeJS.Timeout | undefined;
  const waited = await Promise.race([
    run,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, context.settings.uploads.completionWaitMs, undefined);
    }),
  ]).finally(() => clearTimeout(timer));
  if (waited === undefined) {
    context.log.info('resumable upload answered while its attachment is being made', {
      upload: begun.info.id,
    });
    return { headers: stateHeaders(begun.info) };
  }
  if (waited.kind === 'complete') return { headers: completedHeaders(waited.info, prefix) };
  if (waited.kind === 'pending') return { headers: stateHeaders(begun.info) };
  throw waited.error;
}

/** Complete, or completing: every byte is in, and PATCH and HEAD say so without the lock. */
function allIn(info: UploadInfo): boolean {
  return info.completed !== undefined || info.completing !== undefined;
}

function allInHeaders(info: UploadInfo, prefix: string): Record<string, string> {
  return info.completed ? completedHeaders(info, prefix) : stateHeaders(info);
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
  if (allIn(info)) {
    if (offset === info.length && (declared ?? 0) === 0) return;
    throw new BridgeError(
      'Conflict',
      `Every byte of the upload is in (Upload-Offset ${info.length}); ${info.completed ? 'it is complete' : 'its attachment is being made'}.`,
    );
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

/**
 * Termination: the staged bytes and the state go; an attachment already made stays (it is the
 * caller's). A completing upload is refused before this (423).
 */
async function terminate(stored: StoredInfo, store: UploadStore, context: RequestContext): Promise<void> {
  const { info } = stored;
  const { lock, stored: current } = await UploadLock.acquire(
    store,
    stored,
    context.settings.uploads.lockSeconds,
    context.log,
  );
  try {
    if (current.info.completing) {
      throw new BridgeError('Locked', 'The upload is being completed; try again once that is done.', {
        'retry-after': '2',
      });
    }
    await store.removeData(current.info);
    await store.remove(info.id, lock.leaseId);
  } finally {
    await lock.release();
  }
  context.log.info('resumable upload terminated', { upload: info.id });
}

/** HEAD and PATCH on an upload whose completion failed and whose bytes are gone. */
function gone(info: UploadInfo): BridgeError {
  return new BridgeError('Gone', `The upload failed and its bytes are gone: ${info.failed?.message ?? ''}`);
}

/** The tus state of an upload: a completing one reports every byte (clients are done sending). */
function stateHeaders(info: UploadInfo): Record<string, string> {
  const phase = phaseOf(info);
  return {
    'upload-offset': String(info.offset),
    ...(info.length === undefined
      ? { 'upload-defer-length': '1' }
      : { 'upload-length': String(info.length) }),
    ...(info.metadata === undefined ? {} : { 'upload-metadata': info.metadata }),
    ...(phase === 'uploading' ? { 'upload-expires': httpDate(info.expiresAt) } : {}),
    'x-upload-state': info.failed && phase === 'uploading' ? 'failed' : phase,
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

/**
 * GET: the upload as JSON. 200 while it uploads and once complete (with its attachment); 202 with
 * Retry-After while the attachment is being made; once a completion failed for good, that failure's
 * status and JSON error, with `completable` saying whether sending the bytes from `offset` again
 * completes it (else the upload is gone and must start over).
 */
function describe(info: UploadInfo, prefix: string): Response {
  const phase = phaseOf(info);
  const body = {
    id: info.id,
    state: info.failed && phase === 'uploading' ? 'failed' : phase,
    offset: info.offset,
    length: info.length ?? null,
    expires: phase === 'uploading' ? new Date(info.expiresAt).toISOString() : null,
    complete: info.completed !== undefined,
    attachmentId: info.target.id,
    ...(info.completed
      ? { attachment: info.completed.attachment, location: attachmentPath(info, prefix) }
      : {}),
  };
  const headers = { 'cache-control': 'no-store' };
  if (phase === 'completing') return jsonResponse(202, body, { ...headers, 'retry-after': '2' });
  if (info.failed && (phase === 'uploading' || phase === 'failed')) {
    const { status, code, message, completable } = info.failed;
    return jsonResponse(status, { code, message, ...body, completable }, headers);
  }
  return jsonResponse(200, body, headers);
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
