import { createSecretKey, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, describeError, type Logger } from '../log.js';
import {
  createAttachment,
  listAttachments,
  replaceAttachment,
  replaceMedia,
  sendMedia,
} from './attachments.js';
import { verifyMasterKey } from './auth.js';
import type { Context, EmulatorStats, ObservedRequest } from './context.js';
import { EmulatorError, notFound } from './errors.js';
import { FaultPlan, FaultRuleError, faultStatus } from './faults.js';
import { dualProtocolServer } from './listener.js';
import { ClientAbort } from './media.js';
import { targetOf } from './paths.js';
import {
  account,
  answerFeed,
  answerQuery,
  deleted,
  documentItem,
  documentsFor,
  isQuery,
  partitionKeyRanges,
  writeDocument,
} from './resources.js';
import { dropAfter, flag, header, readAll, readJson, sendError, sendJson } from './respond.js';
import { EmulatorStore, type DocumentRef } from './store.js';
import { loadOrCreateIdentity, type TlsIdentity } from './tls.js';

export type { EmulatorStats, ObservedRequest } from './context.js';

/** Microsoft's published emulator key: documented, not a secret. */
export const EMULATOR_KEY =
  'C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==';
export const EMULATOR_PORT = 8081;

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
  /**
   * HTTPS on the same port, as Microsoft's emulator serves it, with a certificate made at first start
   * and kept in `dir` (a per-user folder by default, see tls.ts). `false` serves HTTP only. TLS 1.0 is
   * accepted too, because the legacy `documentdb` SDK asks for nothing newer.
   */
  tls?: false | { dir?: string };
  /**
   * Answer a `Range: bytes=...` header on `GET /media/{id}` with 206 and `Content-Range` (416 past the
   * end). Off by default: nothing says the service honours ranges (docs/cosmos-rest.md), so the whole
   * media is sent, as the emulator assumes the service does.
   */
  honourMediaRanges?: boolean;
}

export interface Emulator {
  /** e.g. `http://127.0.0.1:8081` */
  readonly url: string;
  /** e.g. `https://localhost:8081` (same port); undefined with `tls: false`. */
  readonly httpsUrl: string | undefined;
  /** The certificate to trust for `httpsUrl` (`NODE_EXTRA_CA_CERTS`); undefined with `tls: false`. */
  readonly certPath: string | undefined;
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

/** Unsigned, outside Cosmos DB's namespace: for benchmarks and soak tests running it in another process. */
const STATS_PATH = '/_emulator/stats';
const FAULTS_PATH = '/_emulator/faults';

/**
 * A local stand-in for Cosmos DB's REST API: the database account, databases, collections (single and
 * hierarchical partition keys), documents (create, upsert, replace, patch, delete, queries through
 * `@zeit/cosmosdb-query`, feeds), attachments (raw media and metadata) and media, by name-based and
 * rid-based links, over HTTP and HTTPS on one port. Requests are signed and checked like the service
 * checks them; media streams to disk and is never held in memory.
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const keyText = options.key ?? EMULATOR_KEY;
  const key = createSecretKey(Buffer.from(keyText, 'base64'));
  const log = options.log ?? silentLogger;
  const identity = options.tls === false ? undefined : await tlsIdentity(options.tls?.dir, log);
  const ownsMediaDir = options.mediaDir === undefined;
  const mediaDir = options.mediaDir ?? (await mkdtemp(join(tmpdir(), 'cosmos-emulator-')));
  const context: Context = {
    key,
    store: new EmulatorStore(),
    log,
    media: {
      dir: mediaDir,
      discard: options.discardMedia ?? false,
      maxBytes: options.maxMediaBytes ?? Infinity,
    },
    honourMediaRanges: options.honourMediaRanges ?? false,
    lsn: 0,
    onRequest: options.onRequest,
    stats: { connections: 0, openConnections: 0, requests: 0 },
    faults: new FaultPlan(),
    activeFaults: new WeakMap(),
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res, context).catch((err: unknown) => {
      context.log.error('emulator: unexpected failure', describeError(err));
      if (!res.headersSent)
        sendError(req, res, context, new EmulatorError(500, 'InternalServerError', 'Unexpected.'));
      else res.destroy();
    });
  };
  const http = createServer({ keepAliveTimeout: 30_000 }, onRequest);
  const https = identity ? httpsServer(identity, onRequest) : undefined;
  const listener = dualProtocolServer(http, https);
  const server = listener.server;
  server.on('connection', (socket) => {
    context.stats.connections += 1;
    context.stats.openConnections += 1;
    socket.once('close', () => (context.stats.openConnections -= 1));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? EMULATOR_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    httpsUrl: identity ? `https://localhost:${port}` : undefined,
    certPath: identity?.certPath,
    port,
    key: keyText,
    mediaDir,
    store: context.store,
    faults: context.faults,
    stats: () => ({ ...context.stats }),
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      listener.dropConnections();
      await closed;
      if (ownsMediaDir) await rm(mediaDir, { recursive: true, force: true });
    },
  };
}

/**
 * The certificate for HTTPS. With the default folder, a failure to make or read it (a read-only home,
 * say) leaves the emulator on HTTP, which is all the bridge needs; a folder given explicitly must work.
 */
async function tlsIdentity(dir: string | undefined, log: Logger): Promise<TlsIdentity | undefined> {
  try {
    return await loadOrCreateIdentity(dir);
  } catch (err) {
    if (dir !== undefined) throw err;
    log.warn('emulator: no certificate for HTTPS, serving HTTP only', describeError(err));
    return undefined;
  }
}

function httpsServer(
  identity: TlsIdentity,
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
): HttpsServer {
  return createHttpsServer(
    {
      cert: identity.cert,
      key: identity.key,
      keepAliveTimeout: 30_000,
      // The legacy SDK forces TLS 1.0 (`secureProtocol: 'TLSv1_client_method'`); OpenSSL 3 allows it
      // only at security level 0. Newer clients still negotiate TLS 1.3.
      minVersion: 'TLSv1',
      ciphers: 'DEFAULT:@SECLEVEL=0',
    },
    onRequest,
  );
}

async function handle(req: IncomingMessage, res: ServerResponse, ctx: Context): Promise<void> {
  if (req.url === STATS_PATH && req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(ctx.stats));
    return;
  }
  if (req.url === FAULTS_PATH) return faultApi(req, res, ctx);
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
  res.setHeader('x-ms-activity-id', randomUUID());
  res.setHeader('x-ms-gatewayversion', 'version=2.14.0');
  try {
    const method = req.method ?? 'GET';
    const target = targetOf(req.url ?? '/');
    const auth = verifyMasterKey(ctx.key, header(req, 'authorization'), header(req, 'x-ms-date'), {
      verb: method,
      resourceType: target.resourceType,
      resourceLink: target.resourceLink,
    });
    if (!auth.ok)
      throw new EmulatorError(auth.status, auth.status === 401 ? 'Unauthorized' : 'Forbidden', auth.message);
    if (!header(req, 'x-ms-version'))
      throw new EmulatorError(400, 'BadRequest', 'The x-ms-version header is required.');
    const fault = ctx.faults.take(method, new URL(req.url!.replace(/^\/+/, '/'), 'http://emulator').pathname);
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
    let segments = target.segments;
    let documentKey: string | undefined;
    if (target.ridBased) {
      const resolved = ctx.store.namesOfRids(segments.filter((_, i) => i % 2 === 1));
      segments = segments.map((segment, i) => (i % 2 === 1 ? resolved.ids[(i - 1) / 2]! : segment));
      documentKey = resolved.partitionKey;
    }
    await route(req, res, ctx, method, segments, documentKey);
  } catch (err) {
    if (err instanceof ClientAbort) {
      res.destroy();
      return;
    }
    if (!(err instanceof EmulatorError)) throw err;
    sendError(req, res, ctx, err);
  }
}

/** `/_emulator/faults`: `GET` lists the active rules, `POST` replaces them (400 for a bad rule), `DELETE` clears them. */
async function faultApi(req: IncomingMessage, res: ServerResponse, ctx: Context): Promise<void> {
  const answer = (status: number, body?: unknown) => {
    res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  };
  if (req.method === 'GET') return answer(200, ctx.faults.list());
  if (req.method === 'DELETE') {
    ctx.faults.clear();
    return answer(204);
  }
  if (req.method !== 'POST')
    return answer(405, { code: 'MethodNotAllowed', message: 'Use GET, POST or DELETE.' });
  let rules: unknown;
  try {
    rules = await readJson(req);
    ctx.faults.replace(rules);
  } catch (err) {
    if (err instanceof FaultRuleError) return answer(400, { code: 'BadRequest', message: err.message });
    if (err instanceof EmulatorError) return answer(err.status, { code: err.code, message: err.message });
    throw err;
  }
  return answer(204);
}

async function route(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  method: string,
  segments: string[],
  documentKey: string | undefined,
): Promise<void> {
  const { store } = ctx;
  const [s0, db, , coll, , doc, s6, att] = segments;
  const n = segments.length;
  const is = (length: number, ...names: string[]) =>
    n === length && names.every((name, i) => segments[i * 2] === name);
  const ref = (): DocumentRef => ({
    db: db!,
    coll: coll!,
    doc: doc!,
    partitionKey: header(req, 'x-ms-documentdb-partitionkey') ?? documentKey,
  });
  const ok = (status: number, body?: unknown) => sendJson(req, res, ctx, status, body);

  if (n === 0) {
    if (method === 'GET') return account(req, res, ctx);
  } else if (s0 === 'media' && n === 2) {
    if (method === 'GET') return sendMedia(req, res, ctx, segments[1]!);
    if (method === 'PUT') return replaceMedia(req, res, ctx, segments[1]!);
  } else if (is(1, 'dbs')) {
    if (method === 'POST' && isQuery(req))
      return answerQuery(req, res, ctx, 'Databases', '', () => store.listDatabases());
    if (method === 'POST') return ok(201, store.createDatabase(await readJson(req)));
    if (method === 'GET') return answerFeed(req, res, ctx, 'Databases', '', store.listDatabases());
  } else if (is(2, 'dbs')) {
    if (method === 'GET') return ok(200, store.readDatabase(db!));
    if (method === 'DELETE') return deleted(req, res, ctx, store.deleteDatabase(db!));
  } else if (is(3, 'dbs', 'colls')) {
    const rid = store.readDatabase(db!)._rid;
    if (method === 'POST' && isQuery(req))
      return answerQuery(req, res, ctx, 'DocumentCollections', rid, () => store.listCollections(db!));
    if (method === 'POST') return ok(201, store.createCollection(db!, await readJson(req)));
    if (method === 'GET')
      return answerFeed(req, res, ctx, 'DocumentCollections', rid, store.listCollections(db!));
  } else if (is(4, 'dbs', 'colls')) {
    if (method === 'GET') return ok(200, store.readCollection(db!, coll!));
    if (method === 'PUT')
      return ok(200, store.replaceCollection(db!, coll!, await readJson(req), header(req, 'if-match')));
    if (method === 'DELETE') return deleted(req, res, ctx, store.deleteCollection(db!, coll!));
  } else if (is(5, 'dbs', 'colls', 'pkranges')) {
    if (method === 'GET') return partitionKeyRanges(req, res, ctx, store.readCollection(db!, coll!));
  } else if (is(5, 'dbs', 'colls', 'docs')) {
    const collection = store.readCollection(db!, coll!);
    if (method === 'POST' && isQuery(req)) {
      const paths = store.partitionKeyOf(db!, coll!)?.paths;
      return answerQuery(
        req,
        res,
        ctx,
        'Documents',
        collection._rid,
        documentsFor(req, ctx, db!, coll!),
        paths,
      );
    }
    if (method === 'POST') return writeDocument(req, res, ctx, db!, coll!);
    if (method === 'GET')
      return answerFeed(req, res, ctx, 'Documents', collection._rid, documentsFor(req, ctx, db!, coll!)());
  } else if (is(6, 'dbs', 'colls', 'docs')) {
    if (await documentItem(req, res, ctx, method, ref())) return;
  } else if (is(7, 'dbs', 'colls', 'docs') && s6 === 'attachments') {
    if (method === 'POST' && isQuery(req)) {
      const { documentRid, attachments } = store.listAttachments(ref());
      return answerQuery(req, res, ctx, 'Attachments', documentRid, () => attachments);
    }
    if (method === 'POST')
      return createAttachment(req, res, ctx, ref(), flag(req, 'x-ms-documentdb-is-upsert'));
    if (method === 'GET') return listAttachments(req, res, ctx, ref());
  } else if (is(8, 'dbs', 'colls', 'docs', 'attachments')) {
    if (method === 'GET') return ok(200, store.readAttachment(ref(), att!));
    if (method === 'PUT') return replaceAttachment(req, res, ctx, ref(), att!);
    if (method === 'DELETE')
      return deleted(req, res, ctx, store.deleteAttachment(ref(), att!, header(req, 'if-match')));
  } else {
    throw notFound();
  }
  throw new EmulatorError(405, 'MethodNotAllowed', `${method} is not supported on this resource.`);
}

/**
 * What to print about HTTPS at start: the URL the SDKs use, like Microsoft's emulator's, and the
 * certificate to trust, as `NODE_EXTRA_CA_CERTS` takes it.
 */
export function httpsLines(emulator: Emulator): string[] {
  if (!emulator.httpsUrl || !emulator.certPath) return [];
  return [
    `  HTTPS for Cosmos DB SDKs: ${emulator.httpsUrl}/ (account key: Microsoft's public emulator key)`,
    `  Trust its certificate in Node.js: NODE_EXTRA_CA_CERTS=${emulator.certPath}`,
  ];
}
