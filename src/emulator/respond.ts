import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { prepareEarlyAnswer } from '../http/early-answer.js';
import type { Context } from './context.js';
import { badRequest, tooLarge, type EmulatorError } from './errors.js';
import { faultStatus } from './faults.js';
import { ClientAbort } from './media.js';

/** The service's documented request size limit, for JSON bodies. */
const MAX_JSON_BYTES = 2 * 1024 * 1024;
const GATEWAY_VERSION = 'Microsoft.Azure.Documents.Common/2.14.0';

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A boolean header as the SDKs send them (`true`, `True`). */
export function flag(req: IncomingMessage, name: string): boolean {
  return header(req, name)?.toLowerCase() === 'true';
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
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

/** A feed answer: `{"_rid", "<Name>": [...], "_count"}`. */
export function feed(name: string, rid: string, items: unknown[]) {
  return { _rid: rid, [name]: items, _count: items.length };
}

/**
 * The REST version from which the service writes session tokens as `{range}:{version}#{lsn}`; before
 * it, as `{range}:{lsn}`, which is all the legacy SDK (x-ms-version 2017-11-15) can parse.
 */
const VECTOR_SESSION_TOKENS = '2018-06-18';

/** Headers on every Cosmos answer: charge, session token, the account's media quota and usage. */
export function commonHeaders(ctx: Context, version?: string): Record<string, string> {
  ctx.lsn += 1;
  const legacy = version !== undefined && version < VECTOR_SESSION_TOKENS;
  return {
    'x-ms-request-charge': '1',
    'x-ms-session-token': legacy ? `0:${ctx.lsn}` : `0:-1#${ctx.lsn}`,
    'x-ms-max-media-storage-usage-mb': '2048',
    'x-ms-media-storage-usage-mb': String(Math.ceil(ctx.store.mediaBytes / (1024 * 1024))),
  };
}

export function sendJson(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  const etag = (body as { _etag?: unknown } | undefined)?._etag;
  deliver(res, ctx, () => {
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)),
      ...commonHeaders(ctx, header(req, 'x-ms-version')),
      ...(typeof etag === 'string' ? { etag } : {}),
      ...headers,
      ...prepareEarlyAnswer(req, res),
    });
    res.end(text);
  });
}

/** 204 after a delete. */
export function sendNoContent(req: IncomingMessage, res: ServerResponse, ctx: Context): void {
  deliver(res, ctx, () => {
    res.writeHead(204, commonHeaders(ctx, header(req, 'x-ms-version')));
    res.end();
  });
}

export function sendError(req: IncomingMessage, res: ServerResponse, ctx: Context, err: EmulatorError): void {
  const activityId = String(res.getHeader('x-ms-activity-id') ?? '');
  for (const [name, value] of Object.entries(err.headers)) res.setHeader(name, value);
  sendJson(req, res, ctx, err.status, {
    code: err.code,
    message: `${err.message}\r\nActivityId: ${activityId}, ${GATEWAY_VERSION}`,
  });
}

/**
 * The `stallMs` fault: the request was received whole, and is stored late, whether or not its client
 * is still there, as the service does with a request it has already taken in.
 */
export async function stallBeforeCommit(res: ServerResponse, ctx: Context): Promise<void> {
  const stall = ctx.activeFaults.get(res)?.stallMs;
  if (stall) await delay(stall);
}

/** Writes an answer, unless a fault delays it or drops the connection in its place. */
export function deliver(res: ServerResponse, ctx: Context, write: () => void): void {
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
export async function readAll(req: IncomingMessage): Promise<void> {
  try {
    for await (const chunk of req) void chunk;
  } catch {
    throw new ClientAbort('The client closed the connection mid-body.');
  }
}

/** Reads `bytes` of the body (or all of it, if shorter), then drops the connection: a network failure mid-request. */
export function dropAfter(req: IncomingMessage, bytes: number): Promise<void> {
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
