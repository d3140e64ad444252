import { createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { idProblem } from '../cosmos/ids.js';
import { prepareEarlyAnswer } from '../http/early-answer.js';
import { closeServer, listen } from '../http/listening.js';
import { silentLogger, describeError, type Logger } from '../log.js';
import { verifyMasterKey } from './auth.js';
import { ClientAbort, deleteMedia, openMedia, receiveMedia } from './media.js';
import { FaultPlan, faultStatus, type FaultRule } from './faults.js';
import { attachmentRidOfMediaId } from './rids.js';
import {
  EmulatorError,
  EmulatorStore,
  badRequest,
  notFound,
  type DocumentRef,
  type Resource,
  type StoredMedia,
} from './store.js';

/** Microsoft's published emulator key: documented, not a secret. */
export const EMULATOR_KEY =
  'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';
export const EMULATOR_PORT = 8081;

/** The service's documented request size limit, for JSON bodies. */
const MAX_JSON_BYTES = 2 * 1024 * 1024;
const GATEWAY_VERSION = 'Microsoft.Azure.Documents.Common/2.14.0';

export interface EmulatorOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Base64 master key; the public emulator key by default. */
  key?: string;
  /** Largest media upload accepted (413 past it). No limit by default. */
  maxMediaBytes?: number;
  /** Where media files go; a new temporary folder (removed on close) by default. */
  mediaDir?: string;
  /** Hash media but keep no bytes (benchmarks). */
  discardMedia?: boolean;
  log?: Logger;
  /** Sees every request as it arrives (tests use it to check what reached "Cosmos DB"). */
  onRequest?: (request: ObservedRequest) => void;
}

export interface ObservedRequest {
  method: string;
  path: string;
  /** All headers but `authorization`. */
  headers: Record<string, string | string[] | undefined>;
  /** Remote port: one per upstream connection, so tests can count connections. */
  remotePort: number | undefined;
}

export interface Emulator {
  /** e.g. `http://127.0.0.1:8081` */
  readonly url: string;
  readonly port: number;
  readonly key: string;
  readonly mediaDir: string;
  readonly store: EmulatorStore;
  /** Fault switches: throttling, delays, dropped connections (see faults.ts). */
  readonly faults: FaultPlan;
  /** Connections accepted and requests seen so far. */
  stats(): EmulatorStats;
  close(): Promise<void>;
}

export interface EmulatorStats {
  connections: number;
  openConnections: number;
  requests: number;
}

/** Unsigned, outside Cosmos DB's namespace: for benchmarks and soak tests running it in another process. */
const STATS_PATH = '/_emulator/stats';
const FAULTS_PATH = '/_emulator/faults';

/**
 * A local stand-in for the slice of Cosmos DB's REST API this project uses: databases, collections,
 * documents, attachments (raw media and metadata), and media. Requests are signed and checked like
 * the service checks them; media streams to disk and is never held in memory.
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const keyText = options.key ?? EMULATOR_KEY;
  const key = createSecretKey(Buffer.from(keyText, 'base64'));
  const ownsMediaDir = options.mediaDir === undefined;
  const mediaDir = options.mediaDir ?? (await mkdtemp(join(tmpdir(), 'cosmos-emulator-')));
  const store = new EmulatorStore();
  const context: Context = {
    key,
    store,
    log: options.log ?? silentLogger,
    media: {
      dir: mediaDir,
      discard: options.discardMedia ?? false,
      maxBytes: options.maxMediaBytes ?? Infinity,
    },
    lsn: 0,
    onRequest: options.onRequest,
    stats: { connections: 0, openConnections: 0, requests: 0 },
    faults: new FaultPlan(),
    activeFaults: new WeakMap(),
  };
  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    handle(req, res, context).catch((err: unknown) => {
      context.log.error('emulator: unexpected failure', describeError(err));
      if (!res.headersSent)
        sendError(req, res, context, new EmulatorError(500, 'InternalServerError', 'Unexpected.'));
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    context.stats.connections += 1;
    context.stats.openConnections += 1;
    socket.once('close', () => (context.stats.openConnections -= 1));
  });
  await listen(server, options.port ?? EMULATOR_PORT, options.host ?? '127.0.0.1');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    port,
    key: keyText,
    mediaDir,
    store,
    faults: context.faults,
    stats: () => ({ ...context.stats }),
    async close() {
      await closeServer(server);
      if (ownsMediaDir) await rm(mediaDir, { recursive: true, force: true });
    },
  };
}

interface Context {
  key: KeyObject;
  store: EmulatorStore;
  log: Logger;
  media: { dir: string; discard: boolean; maxBytes: number };
  lsn: number;
  onRequest: ((request: ObservedRequest) => void) | undefined;
  stats: EmulatorStats;
  faults: FaultPlan;
  /** The fault that shapes each response still being worked on (delay, drop instead of answering). */
  activeFaults: WeakMap<ServerResponse, FaultRule>;
}

async function handle(req: IncomingMessage, res: ServerResponse, ctx: Context): Promise<void> {
  if (req.url === STATS_PATH && req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(ctx.stats));
    return;
  }
  if (req.url === FAULTS_PATH) {
    if (req.method === 'POST') ctx.faults.replace((await readJson(req)) as FaultRule[]);
    else if (req.method === 'DELETE') ctx.faults.clear();
    res.writeHead(204);
    res.end();
    return;
  }
  ctx.stats.requests += 1;
  if (ctx.onRequest) {
    const { authorization: _, ...headers } = req.headers;
    ctx.onRequest({
      method: req.method ?? '',
      path: req.url ?? '',
      headers,
      remotePort: req.socket.remotePort,
    });
  }
  const activityId = randomUUID();
  res.setHeader('x-ms-activity-id', activityId);
  res.setHeader('x-ms-gatewayversion', 'version=2.14.0');
  try {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const segments = url.pathname
      .split('/')
      .filter(Boolean)
      .map((segment) => {
        try {
          return decodeURIComponent(segment);
        } catch {
          throw badRequest('The request path is not valid percent-encoded.');
        }
      });
    const method = req.method ?? 'GET';
    const { resourceType, resourceLink } = signedTarget(segments);
    const auth = verifyMasterKey(ctx.key, header(req, 'authorization'), header(req, 'x-ms-date'), {
      verb: method,
      resourceType,
      resourceLink,
    });
    if (!auth.ok)
      throw new EmulatorError(auth.status, auth.status === 401 ? 'Unauthorized' : 'Forbidden', auth.message);
    if (!header(req, 'x-ms-version')) throw badRequest('The x-ms-version header is required.');
    const fault = ctx.faults.take(method, url.pathname);
    if (fault) {
      if (fault.dropAfterBytes !== undefined) return dropAfter(req, fault.dropAfterBytes);
      ctx.activeFaults.set(res, fault);
      if (fault.status !== undefined) {
        if (fault.afterBody) await readAll(req);
        if (fault.closeEarly) res.once('finish', () => req.socket.destroy());
        const { code, message } = faultStatus(fault.status);
        const hint: Record<string, string> =
          fault.retryAfterMs === undefined ? {} : { 'x-ms-retry-after-ms': String(fault.retryAfterMs) };
        throw new EmulatorError(fault.status, code, message, hint);
      }
    }
    await route(req, res, ctx, method, segments);
  } catch (err) {
    if (err instanceof ClientAbort) {
      res.destroy();
      return;
    }
    if (!(err instanceof EmulatorError)) throw err;
    sendError(req, res, ctx, err);
  }
}

/** What the signature covers: an even path (ending in an id) signs itself; an odd one its parent. */
function signedTarget(segments: string[]): { resourceType: string; resourceLink: string } {
  if (segments.length === 0) return { resourceType: '', resourceLink: '' };
  if (segments[0] === 'media' && segments.length === 2) {
    const rid = attachmentRidOfMediaId(segments[1]!);
    if (rid === undefined) throw notFound();
    return { resourceType: 'media', resourceLink: rid.toLowerCase() };
  }
  if (segments.length % 2 === 0) {
    return { resourceType: segments.at(-2)!, resourceLink: segments.join('/') };
  }
  return { resourceType: segments.at(-1)!, resourceLink: segments.slice(0, -1).join('/') };
}

async function route(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  method: string,
  segments: string[],
): Promise<void> {
  const { store } = ctx;
  const [s0, db, s2, coll, s4, doc, s6, att] = segments;
  const n = segments.length;
  const is = (length: number, ...names: (string | undefined)[]) =>
    n === length && names.every((name, i) => segments[i * 2] === name);
  const ref = (): DocumentRef => ({
    db: db!,
    coll: coll!,
    doc: doc!,
    partitionKey: header(req, 'x-ms-documentdb-partitionkey'),
  });
  const ok = (status: number, body?: unknown) => sendJson(req, res, ctx, status, body);

  if (s0 === 'media' && n === 2) {
    if (method === 'GET') return sendMedia(req, res, ctx, segments[1]!);
    if (method === 'PUT') return replaceMedia(req, res, ctx, segments[1]!);
  } else if (is(1, 'dbs')) {
    if (method === 'POST') return ok(201, store.createDatabase(await readJson(req)));
    if (method === 'GET') return ok(200, feed('Databases', '', store.listDatabases()));
  } else if (is(2, 'dbs')) {
    if (method === 'GET') return ok(200, store.readDatabase(db!));
    if (method === 'DELETE') return deleted(res, ctx, store.deleteDatabase(db!));
  } else if (is(3, 'dbs', 'colls')) {
    if (method === 'POST') return ok(201, store.createCollection(db!, await readJson(req)));
    if (method === 'GET')
      return ok(200, feed('DocumentCollections', store.readDatabase(db!)._rid, store.listCollections(db!)));
  } else if (is(4, 'dbs', 'colls')) {
    if (method === 'GET') return ok(200, store.readCollection(db!, coll!));
    if (method === 'DELETE') return deleted(res, ctx, store.deleteCollection(db!, coll!));
  } else if (is(5, 'dbs', 'colls', 'docs')) {
    if (method === 'POST') {
      return ok(
        201,
        store.createDocument(db!, coll!, await readJson(req), header(req, 'x-ms-documentdb-partitionkey')),
      );
    }
    if (method === 'GET') {
      return ok(
        200,
        feed('Documents', store.readCollection(db!, coll!)._rid, store.listDocuments(db!, coll!)),
      );
    }
  } else if (is(6, 'dbs', 'colls', 'docs')) {
    if (method === 'GET') return ok(200, store.readDocument(ref()));
    if (method === 'DELETE') return deleted(res, ctx, store.deleteDocument(ref()));
  } else if (is(7, 'dbs', 'colls', 'docs') && s6 === 'attachments') {
    if (method === 'POST') return createAttachment(req, res, ctx, ref());
    if (method === 'GET') return listAttachments(req, res, ctx, ref());
  } else if (n === 8 && s0 === 'dbs' && s2 === 'colls' && s4 === 'docs' && s6 === 'attachments') {
    if (method === 'GET') return ok(200, store.readAttachment(ref(), att!));
    if (method === 'PUT') {
      const body = attachmentBody(await readJson(req));
      const { resource, orphaned } = store.replaceAttachment(ref(), att!, body, header(req, 'if-match'));
      await Promise.all(orphaned.map(deleteMedia));
      return ok(200, resource);
    }
    if (method === 'DELETE')
      return deleted(res, ctx, store.deleteAttachment(ref(), att!, header(req, 'if-match')));
  } else {
    throw notFound();
  }
  throw new EmulatorError(405, 'MethodNotAllowed', `${method} is not supported on this resource.`);
}

async function createAttachment(req: IncomingMessage, res: ServerResponse, ctx: Context, ref: DocumentRef) {
  const slug = header(req, 'slug');
  const contentType = header(req, 'content-type') ?? 'application/octet-stream';
  // The service refuses a malformed media type (a type/subtype pair of tokens) with 400.
  if (!/^[\w!#$&^.+-]+\/[\w!#$&^.+-]+\s*(;.*)?$/.test(contentType)) {
    throw badRequest(`The content type "${contentType}" is not valid.`);
  }
  if (slug === undefined) {
    // No Slug: the body is an attachment resource (id, contentType, media, custom properties).
    const body = attachmentBody(await readJson(req));
    await stallBeforeCommit(res, ctx);
    return sendJson(req, res, ctx, 201, ctx.store.createAttachment(ref, body));
  }
  let id: string;
  try {
    id = decodeURIComponent(slug); // RFC 5023: the Slug is percent-encoded UTF-8
  } catch {
    throw badRequest('The Slug header is not valid percent-encoded UTF-8.');
  }
  if (idProblem(id) !== undefined) throw badRequest('The resource name in the Slug header is invalid.');
  // Refuse before reading any byte where the service would.
  ctx.store.checkAttachmentCreate(ref, id);
  const declared = Number(header(req, 'content-length') ?? NaN);
  if (declared > ctx.media.maxBytes) throw tooLarge();
  const media = await receiveMedia(req, ctx.media);
  await stallBeforeCommit(res, ctx);
  let resource: Resource;
  try {
    resource = ctx.store.createAttachment(ref, { id, contentType: contentType.split(';')[0]!.trim() }, media);
  } catch (err) {
    await deleteMedia(media);
    throw err;
  }
  return sendJson(req, res, ctx, 201, resource);
}

function listAttachments(req: IncomingMessage, res: ServerResponse, ctx: Context, ref: DocumentRef) {
  const { documentRid, attachments } = ctx.store.listAttachments(ref);
  const max = Number(header(req, 'x-ms-max-item-count') ?? -1);
  const start = Number(Buffer.from(header(req, 'x-ms-continuation') ?? '', 'base64').toString() || 0);
  const pageSize = max > 0 ? max : attachments.length;
  const page = attachments.slice(start, start + pageSize);
  const next = start + page.length;
  if (next < attachments.length)
    res.setHeader('x-ms-continuation', Buffer.from(String(next)).toString('base64'));
  res.setHeader('x-ms-item-count', String(page.length));
  return sendJson(req, res, ctx, 200, feed('Attachments', documentRid, page));
}

function sendMedia(req: IncomingMessage, res: ServerResponse, ctx: Context, mediaId: string) {
  const { media, contentType } = ctx.store.readMedia(mediaId);
  const stream = openMedia(media);
  if (!stream) throw new EmulatorError(404, 'NotFound', 'Media is discarded in this emulator mode.');
  deliver(res, ctx, () => {
    res.writeHead(200, {
      'content-type': contentType,
      'content-length': String(media.size),
      ...commonHeaders(ctx),
    });
    pipeline(stream, res).catch(() => res.destroy());
  });
}

async function replaceMedia(req: IncomingMessage, res: ServerResponse, ctx: Context, mediaId: string) {
  ctx.store.readMedia(mediaId); // 404 before any byte is read
  const media = await receiveMedia(req, ctx.media);
  const contentType = (header(req, 'content-type') ?? 'application/octet-stream').split(';')[0]!.trim();
  try {
    const { resource, old } = ctx.store.replaceMedia(mediaId, media, contentType);
    await deleteMedia(old);
    return sendJson(req, res, ctx, 200, resource);
  } catch (err) {
    await deleteMedia(media);
    throw err;
  }
}

async function deleted(res: ServerResponse, ctx: Context, media: StoredMedia[]) {
  await Promise.all(media.map(deleteMedia));
  deliver(res, ctx, () => {
    res.writeHead(204, commonHeaders(ctx));
    res.end();
  });
}

function attachmentBody(body: unknown): Record<string, unknown> & { id: string } {
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
  return body as Record<string, unknown> & { id: string };
}

function feed(name: string, rid: string, items: Resource[]) {
  return { _rid: rid, [name]: items, _count: items.length };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const declared = Number(header(req, 'content-length') ?? NaN);
  if (declared > MAX_JSON_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_JSON_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw badRequest('The JSON body is invalid.');
  }
}

function tooLarge(): EmulatorError {
  return new EmulatorError(413, 'RequestEntityTooLarge', 'Request size is too large.');
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function commonHeaders(ctx: Context): Record<string, string> {
  ctx.lsn += 1;
  return {
    'x-ms-request-charge': '1',
    'x-ms-session-token': `0:-1#${ctx.lsn}`,
    'x-ms-max-media-storage-usage-mb': '2048',
    'x-ms-media-storage-usage-mb': String(Math.ceil(ctx.store.mediaBytes / (1024 * 1024))),
  };
}

function sendJson(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  status: number,
  body: unknown,
): void {
  const text = JSON.stringify(body);
  const etag = (body as { _etag?: unknown } | undefined)?._etag;
  deliver(res, ctx, () => {
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)),
      ...commonHeaders(ctx),
      ...(typeof etag === 'string' ? { etag } : {}),
      ...prepareEarlyAnswer(req, res),
    });
    res.end(text);
  });
}

/**
 * The `stallMs` fault: the request was received whole, and is stored late, whether or not its client
 * is still there, as the service does with a request it has already taken in.
 */
async function stallBeforeCommit(res: ServerResponse, ctx: Context): Promise<void> {
  const stall = ctx.activeFaults.get(res)?.stallMs;
  if (stall) await delay(stall);
}

/** Writes an answer, unless a fault delays it or drops the connection in its place. */
function deliver(res: ServerResponse, ctx: Context, write: () => void): void {
  const fault = ctx.activeFaults.get(res);
  const go = () => {
    if (fault?.dropAfterCommit) {
      res.socket?.destroy();
    } else if (fault?.statusAfterCommit !== undefined) {
      const { code, message } = faultStatus(fault.statusAfterCommit);
      res.writeHead(fault.statusAfterCommit, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code, message }));
    } else {
      write();
    }
  };
  if (fault?.delayMs) setTimeout(go, fault.delayMs);
  else go();
}

/** Reads a body to its end, keeping none of it. */
async function readAll(req: IncomingMessage): Promise<void> {
  try {
    for await (const chunk of req) void chunk;
  } catch {
    throw new ClientAbort('The client closed the connection mid-body.');
  }
}

/** Reads `bytes` of the body (or all of it, if shorter), then drops the connection: a network failure mid-request. */
function dropAfter(req: IncomingMessage, bytes: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const drop = () => {
      req.socket.destroy();
      resolve();
    };
    if (bytes <= 0) return drop();
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen >= bytes) drop();
    });
    req.once('end', drop);
    req.once('error', () => resolve());
  });
}

function sendError(req: IncomingMessage, res: ServerResponse, ctx: Context, err: EmulatorError): void {
  const activityId = String(res.getHeader('x-ms-activity-id') ?? '');
  for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
  sendJson(req, res, ctx, err.status, {
    code: err.code,
    message: `${err.message}\r\nActivityId: ${activityId}, ${GATEWAY_VERSION}`,
  });
}
