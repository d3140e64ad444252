import { createHash, type KeyObject } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { errors, Pool, type Dispatcher } from 'undici';
import { silentLogger, type Logger } from '../log.js';
import type { CosmosSettings } from '../settings.js';
import { CosmosError } from './errors.js';
import { encodeSlug, mediaResourceLink } from './ids.js';
import { encodePartitionKey, type PartitionKey } from './partition-key.js';
import { signedHeaders } from './signer.js';

export interface DocumentAddress {
  db: string;
  coll: string;
  doc: string;
}

export interface CallOptions {
  partitionKey?: PartitionKey | undefined;
  sessionToken?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface CosmosRequest extends CallOptions {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** URL path, ids percent-encoded. */
  path: string;
  resourceType: string;
  /** Signed link, ids as they are. */
  resourceLink: string;
  headers?: Record<string, string>;
  /**
   * A string or Buffer can be sent again (retries, key rotation); a stream is sent once; a replayable
   * body streams first and turns into a Buffer if it has to be sent again.
   */
  body?: string | Buffer | Readable | ReplayableBody;
}

/** A body streamed on the first attempt that can be had whole for another (up to some size). */
export interface ReplayableBody {
  readonly first: Readable;
  /** The whole body for another attempt, or undefined when it is too large to have been kept. */
  replay(): Promise<Buffer | undefined>;
  /** No more attempts: let go of what was kept. */
  release(): void;
}

function isReplayable(body: CosmosRequest['body']): body is ReplayableBody {
  return typeof body === 'object' && !Buffer.isBuffer(body) && !(body instanceof Readable);
}

/** Any answer Cosmos DB gave, error statuses included; the body is always read. */
export interface CosmosReply {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Cosmos DB refused the key in use and the client switched to the other one: sending again will work. */
  keySwitched?: boolean;
  /** An earlier attempt of this request was answered 503 and retried: it may have been stored after all. */
  earlierAttemptUnknown?: boolean;
}

export interface ClientOptions extends CosmosSettings {
  timeoutMs: number;
  connections: number;
  /** Total time retries of a throttled request may take; 0 disables retries. */
  retryBudgetMs?: number;
  log?: Logger;
}

/** The pool for small requests: up to 16 connections, never more than the upload pool has. */
export function controlConnections(uploadConnections: number): number {
  return Math.min(16, uploadConnections);
}

/** Throttled (429), retry-with (449) and unavailable (503): safe to send again, even for writes. */
export const RETRYABLE_STATUSES = new Set([429, 449, 503]);
const MAX_BACKOFF_MS = 5_000;
/**
 * Attempts per request at most, whatever the budget: ten, as the Cosmos DB SDKs allow for throttling
 * (so a retry-after of 0 never becomes a busy loop).
 */
const MAX_ATTEMPTS = 10;

/**
 * Cosmos DB's REST surface for attachments, over one keep-alive pool shared by every invocation of the
 * function app. Signs each request with the master key; the key never leaves this object. Retries
 * throttled requests whose body can be replayed, and fails over to the secondary key on a 401.
 */
export class CosmosClient {
  /** Streamed uploads, which can hold a connection as long as a slow caller takes to send. */
  readonly #streams: Pool;
  /** Everything else (JSON creates, lookups, rollbacks), so a slow upload never holds them up. */
  readonly #control: Pool;
  readonly #keys: KeyObject[];
  #preferredKey = 0;
  /** Cosmos DB's clock minus this host's, from the `Date` of its latest answer (whole seconds). */
  #clockOffsetMs = 0;
  readonly #retryBudgetMs: number;
  readonly #log: Logger;
  /** The account's host name, for messages about connections (never a key). */
  readonly #host: string;

  constructor(options: ClientOptions) {
    this.#keys = options.secondaryKey ? [options.key, options.secondaryKey] : [options.key];
    this.#retryBudgetMs = options.retryBudgetMs ?? 0;
    this.#log = options.log ?? silentLogger;
    this.#host = options.endpoint.host;
    const pool = (connections: number) =>
      new Pool(options.endpoint.origin, {
        connections,
        connectTimeout: options.timeoutMs,
        headersTimeout: options.timeoutMs,
        bodyTimeout: options.timeoutMs,
        keepAliveTimeout: 30_000,
      });
    this.#streams = pool(options.connections);
    this.#control = pool(controlConnections(options.connections));
  }

  async send(request: CosmosRequest): Promise<CosmosReply> {
    // The retry budget counts from the first answer: uploading the first attempt is the caller's time.
    let started: number | undefined;
    let body = request.body;
    /** Makes the body one that can be sent again: false when it cannot be (a stream, too large to replay). */
    const again = async (): Promise<boolean> => {
      if (isReplayable(body)) {
        const whole = await body.replay();
        if (whole === undefined) return false; // too large to have been kept: it was sent once
        body = whole;
      }
      return !(body instanceof Readable);
    };
    let switchedKey = false;
    let earlierAttemptUnknown = false;
    for (let attempt = 0; ; attempt++) {
      const keyIndex = this.#preferredKey;
      const wire = isReplayable(body) ? body.first : body;
      let reply: CosmosReply;
      try {
        reply = await this.#sendOnce({ ...request, body: wire }, this.#keys[keyIndex]!);
      } catch (err) {
        // Cosmos DB answered early and closed before the first attempt was all sent (its answer lost
        // to the broken connection): an unfinished chunked body stores nothing, so send it again.
        const unfinished = isReplayable(body) && !body.first.readableEnded;
        started ??= Date.now();
        if (!unfinished || !(err instanceof CosmosError && err.code === 'COSMOS_UNREACHABLE')) throw err;
        const sendAt = Date.now() + retryDelayMs(undefined, attempt);
        if (sendAt - started > this.#retryBudgetMs || !(await again())) throw err;
        this.#log.info('Cosmos DB closed the connection before the part was all sent; sending it again', {
          path: request.path,
        });
        await delay(Math.max(0, sendAt - Date.now()));
        continue;
      }
      started ??= Date.now();
      if (reply.status === 401 && this.#keys.length > 1 && !switchedKey) {
        switchedKey = true;
        this.#refused(keyIndex);
        if (await again()) continue;
        return { ...reply, keySwitched: true };
      }
      if (RETRYABLE_STATUSES.has(reply.status) && attempt < MAX_ATTEMPTS - 1) {
        // Reading the rest of a part to replay it counts towards the wait Cosmos DB asked for.
        const sendAt = Date.now() + retryDelayMs(reply, attempt);
        if (sendAt - started <= this.#retryBudgetMs && (await again())) {
          // 429 and 449 promise nothing was done; after a 503 a write may have happened anyway.
          if (reply.status === 503) earlierAttemptUnknown = true;
          await delay(Math.max(0, sendAt - Date.now()));
          continue;
        }
      }
      return earlierAttemptUnknown ? { ...reply, earlierAttemptUnknown } : reply;
    }
  }

  /**
   * Now, in Cosmos DB's clock as far as its answers tell (their `Date` header; this host's clock before
   * the first answer). Ownership checks compare it with `_ts`, which Cosmos DB stamps by its own clock.
   */
  serviceNow(): number {
    return Date.now() + this.#clockOffsetMs;
  }

  #observeClock(date: string | undefined): void {
    const at = date === undefined ? NaN : Date.parse(date);
    if (Number.isFinite(at)) this.#clockOffsetMs = at - Date.now();
  }

  /** The key Cosmos DB refused: prefer the other one from now on (unless another request already switched). */
  #refused(keyIndex: number): void {
    if (this.#preferredKey !== keyIndex) return;
    this.#preferredKey = (keyIndex + 1) % this.#keys.length;
    this.#log.warn('Cosmos DB refused an account key; switching to the other configured key', {
      refused: keyIndex === 0 ? 'primary' : 'secondary',
    });
  }

  async #sendOnce(
    request: CosmosRequest & { body?: string | Buffer | Readable },
    key: KeyObject,
  ): Promise<CosmosReply> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...signedHeaders(key, {
        verb: request.method,
        resourceType: request.resourceType,
        resourceLink: request.resourceLink,
      }),
      ...request.headers,
    };
    if (request.partitionKey)
      headers['x-ms-documentdb-partitionkey'] = encodePartitionKey(request.partitionKey);
    if (request.sessionToken) headers['x-ms-session-token'] = request.sessionToken;

    let bodyError: Error | undefined;
    if (request.body instanceof Readable) {
      request.body.on('error', (err) => {
        bodyError ??= err;
      });
    }
    try {
      // Streamed bodies can hold a connection as long as a slow caller takes; everything else is quick.
      const pool = request.body instanceof Readable ? this.#streams : this.#control;
      const response = await pool.request({
        method: request.method,
        path: request.path,
        headers,
        body: request.body ?? null,
        signal: request.signal ?? null,
      });
      const body = await response.body.text();
      const replyHeaders = flattenHeaders(response.headers);
      this.#observeClock(replyHeaders.date);
      return { status: response.statusCode, headers: replyHeaders, body };
    } catch (err) {
      // A body that failed on its own (a 413, a broken form, the caller leaving) explains the abort,
      // and the route knows what to make of it; a body undici tore down because the connection to
      // Cosmos DB broke does not.
      if (bodyError && !isNetworkError(bodyError)) throw bodyError;
      throw transportError(err, request.signal, this.#host);
    }
  }

  /**
   * Raw media: the body is the file, the Slug its id. With `upsert`, Cosmos DB's create-or-replace
   * (`x-ms-documentdb-is-upsert`): 201 when it created, 200 when it replaced.
   */
  createAttachmentFromMedia(
    address: DocumentAddress,
    upload: { id: string; contentType: string; body: Buffer | Readable | ReplayableBody },
    options: CallOptions & { upsert?: boolean | undefined },
  ): Promise<CosmosReply> {
    return this.send({
      ...options,
      method: 'POST',
      ...attachmentsOf(address),
      headers: {
        'content-type': upload.contentType,
        slug: encodeSlug(upload.id),
        ...(options.upsert ? { 'x-ms-documentdb-is-upsert': 'true' } : {}),
      },
      body: upload.body,
    });
  }

  /**
   * New raw media for an existing attachment ("Replace an Attachment" with a body of bytes, its
   * Content-Type and a Slug naming it); with `ifMatch`, only if it is still at that etag (412).
   */
  replaceAttachmentMedia(
    address: DocumentAddress,
    upload: { id: string; contentType: string; body: Buffer | Readable | ReplayableBody },
    options: CallOptions & { ifMatch?: string | undefined },
  ): Promise<CosmosReply> {
    return this.send({
      ...options,
      method: 'PUT',
      ...attachmentOf(address, upload.id),
      headers: {
        'content-type': upload.contentType,
        slug: encodeSlug(upload.id),
        ...ifMatchHeader(options.ifMatch),
      },
      body: upload.body,
    });
  }

  createAttachmentFromJson(
    address: DocumentAddress,
    json: string,
    options: CallOptions,
  ): Promise<CosmosReply> {
    return this.send({
      ...options,
      method: 'POST',
      ...attachmentsOf(address),
      headers: { 'content-type': 'application/json' },
      body: json,
    });
  }

  /**
   * Size and SHA-256 of a managed attachment's media, hashed as it streams in (never held whole), to
   * tell a create's own attachment from another of the same id; undefined when there is no such media.
   */
  async measureMedia(mediaLink: string): Promise<{ size: number; sha256: string } | undefined> {
    const mediaId = mediaIdOf(mediaLink);
    if (mediaId === undefined) return undefined;
    const key = this.#keys[this.#preferredKey]!;
    const headers = signedHeaders(key, {
      verb: 'GET',
      resourceType: 'media',
      resourceLink: mediaResourceLink(mediaId),
    });
    let response: Dispatcher.ResponseData;
    try {
      // A look-up, not an upload: the small-request pool, so it never waits behind slow uploads.
      response = await this.#control.request({ method: 'GET', path: `/media/${mediaId}`, headers });
    } catch (err) {
      throw transportError(err, undefined, this.#host);
    }
    if (response.statusCode !== 200) {
      await response.body.dump();
      if (response.statusCode === 404) return undefined;
      throw new Error(`Cosmos DB answered ${response.statusCode} to the media read`);
    }
    const hash = createHash('sha256');
    let size = 0;
    try {
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        hash.update(chunk);
      }
    } catch (err) {
      throw transportError(err, undefined, this.#host);
    }
    return { size, sha256: hash.digest('hex') };
  }

  /**
   * A managed attachment's media as a stream (`Range` passed on when given; Cosmos DB may or may not
   * honour it: a 206 says it did). Undefined when there is no such media. The caller must read or
   * destroy the body. Streamed reads can be slow, so they share the upload pool, never the small one.
   */
  async openMedia(
    mediaLink: string,
    range?: { start: number; end: number },
  ): Promise<{ status: number; headers: Record<string, string>; body: Readable } | undefined> {
    const mediaId = mediaIdOf(mediaLink);
    if (mediaId === undefined) return undefined;
    const headers: Record<string, string> = signedHeaders(this.#keys[this.#preferredKey]!, {
      verb: 'GET',
      resourceType: 'media',
      resourceLink: mediaResourceLink(mediaId),
    });
    if (range) headers.range = `bytes=${range.start}-${range.end}`;
    let response: Dispatcher.ResponseData;
    try {
      response = await this.#streams.request({ method: 'GET', path: `/media/${mediaId}`, headers });
    } catch (err) {
      throw transportError(err, undefined, this.#host);
    }
    const flat = flattenHeaders(response.headers);
    this.#observeClock(flat.date);
    if (response.statusCode === 404) {
      await response.body.dump();
      return undefined;
    }
    return { status: response.statusCode, headers: flat, body: response.body };
  }

  readAttachment(address: DocumentAddress, id: string, options: CallOptions): Promise<CosmosReply> {
    return this.send({ ...options, method: 'GET', ...attachmentOf(address, id) });
  }

  /** Replaces an attachment's JSON; with `ifMatch`, only if it is still at that etag (412 otherwise). */
  replaceAttachment(
    address: DocumentAddress,
    id: string,
    json: string,
    options: CallOptions & { ifMatch?: string | undefined },
  ): Promise<CosmosReply> {
    return this.send({
      ...options,
      method: 'PUT',
      ...attachmentOf(address, id),
      headers: { 'content-type': 'application/json', ...ifMatchHeader(options.ifMatch) },
      body: json,
    });
  }

  /** Deletes an attachment; with `ifMatch`, only if it is still at that etag (412 otherwise). */
  deleteAttachment(
    address: DocumentAddress,
    id: string,
    options: CallOptions & { ifMatch?: string | undefined },
  ): Promise<CosmosReply> {
    return this.send({
      ...options,
      method: 'DELETE',
      ...attachmentOf(address, id),
      headers: ifMatchHeader(options.ifMatch),
    });
  }

  /** One page of a document's attachments; `continuation` is Cosmos DB's opaque token, passed through. */
  listAttachments(
    address: DocumentAddress,
    options: CallOptions & { maxItemCount?: number | undefined; continuation?: string | undefined },
  ): Promise<CosmosReply> {
    const headers: Record<string, string> = {};
    if (options.maxItemCount !== undefined) headers['x-ms-max-item-count'] = String(options.maxItemCount);
    if (options.continuation !== undefined) headers['x-ms-continuation'] = options.continuation;
    return this.send({ ...options, method: 'GET', ...attachmentsOf(address), headers });
  }

  async close(): Promise<void> {
    await Promise.all([this.#streams.close(), this.#control.close()]);
  }
}

function documentLink({ db, coll, doc }: DocumentAddress): { link: string; path: string } {
  const e = encodeURIComponent;
  return {
    link: `dbs/${db}/colls/${coll}/docs/${doc}`,
    path: `/dbs/${e(db)}/colls/${e(coll)}/docs/${e(doc)}`,
  };
}

/** Create and list sign the parent document's link. */
function attachmentsOf(
  address: DocumentAddress,
): Pick<CosmosRequest, 'path' | 'resourceType' | 'resourceLink'> {
  const { link, path } = documentLink(address);
  return { path: `${path}/attachments`, resourceType: 'attachments', resourceLink: link };
}

/** Read, replace and delete sign the attachment's own link. */
function attachmentOf(
  address: DocumentAddress,
  id: string,
): Pick<CosmosRequest, 'path' | 'resourceType' | 'resourceLink'> {
  const { link, path } = documentLink(address);
  return {
    path: `${path}/attachments/${encodeURIComponent(id)}`,
    resourceType: 'attachments',
    resourceLink: `${link}/attachments/${id}`,
  };
}

/** The media id in a managed attachment's `media` link (`/media/{id}`), if it is one. */
function mediaIdOf(mediaLink: string): string | undefined {
  return /^\/media\/([A-Za-z0-9+=-]+)$/.exec(mediaLink)?.[1];
}

function ifMatchHeader(etag: string | undefined): Record<string, string> {
  return etag === undefined ? {} : { 'if-match': etag };
}

/** Cosmos DB's own hint when it gives one, else exponential backoff with jitter. */
function retryDelayMs(reply: CosmosReply | undefined, attempt: number): number {
  const hinted = Number(reply?.headers['x-ms-retry-after-ms']);
  if (Number.isFinite(hinted) && hinted >= 0) return hinted;
  const ceiling = Math.min(MAX_BACKOFF_MS, 100 * 2 ** attempt);
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

/** An error of undici's own, or of the socket (ECONNRESET, EPIPE...), as opposed to one of the body stream. */
function isNetworkError(err: Error): boolean {
  if (err instanceof errors.UndiciError) return true;
  const { code, syscall } = err as NodeJS.ErrnoException;
  return (
    typeof code === 'string' &&
    (code.startsWith('UND_ERR') || syscall !== undefined || /^E[A-Z]+$/.test(code))
  );
}

const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * A failure to reach or hear from Cosmos DB as the client's own error, the original as its cause; an
 * abort passes on the abort's reason (whoever aborted knows why).
 */
function transportError(err: unknown, signal: AbortSignal | undefined, host: string): unknown {
  if (signal?.aborted) return signal.reason ?? err;
  const { code, syscall } = (err ?? {}) as { code?: unknown; syscall?: unknown };
  // No connection was made: the request never left, so nothing can have been applied.
  const notSent = syscall === 'connect' || syscall === 'getaddrinfo' || code === 'UND_ERR_CONNECT_TIMEOUT';
  if (typeof code === 'string' && TIMEOUTS.has(code)) {
    return new CosmosError('COSMOS_TIMEOUT', `Cosmos DB (${host}) did not answer in time.`, {
      cause: err,
      notSent,
    });
  }
  return new CosmosError(
    'COSMOS_UNREACHABLE',
    `Cosmos DB (${host}) could not be reached or dropped the connection.`,
    { cause: err, notSent },
  );
}
