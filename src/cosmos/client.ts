import type { KeyObject } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import { BridgeError, isCallerError } from '../http/errors.js';
import type { CosmosSettings } from '../settings.js';
import { encodeSlug } from './ids.js';
import { encodePartitionKey, type PartitionKey } from './partition-key.js';
import { masterKeyAuthorization, requestDate } from './signer.js';

/** Newest REST version; attachments exist in all of them. */
export const API_VERSION = '2018-12-31';

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
  body?: string | Readable;
}

/** Any answer Cosmos DB gave, error statuses included; the body is always read. */
export interface CosmosReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface ClientOptions extends CosmosSettings {
  timeoutMs: number;
  connections: number;
}

/**
 * Cosmos DB's REST surface for attachments, over one keep-alive pool shared by every invocation of the
 * function app. Signs each request with the master key; the key never leaves this object.
 */
export class CosmosClient {
  readonly #pool: Pool;
  readonly #key: KeyObject;

  constructor(options: ClientOptions) {
    this.#key = options.key;
    this.#pool = new Pool(options.endpoint.origin, {
      connections: options.connections,
      connectTimeout: options.timeoutMs,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      keepAliveTimeout: 30_000,
    });
  }

  async send(request: CosmosRequest): Promise<CosmosReply> {
    const date = requestDate();
    const headers: Record<string, string> = {
      accept: 'application/json',
      'x-ms-version': API_VERSION,
      'x-ms-date': date,
      authorization: masterKeyAuthorization(this.#key, {
        verb: request.method,
        resourceType: request.resourceType,
        resourceLink: request.resourceLink,
        date,
      }),
      ...request.headers,
    };
    if (request.partitionKey)
      headers['x-ms-documentdb-partitionkey'] = encodePartitionKey(request.partitionKey);
    if (request.sessionToken) headers['x-ms-session-token'] = request.sessionToken;

    // The body's own failure (the caller went away, a part grew too large) is the real cause when
    // undici gives up on the request, so remember it.
    let bodyError: Error | undefined;
    if (request.body !== undefined && typeof request.body !== 'string') {
      request.body.on('error', (err) => {
        bodyError ??= err;
      });
    }
    try {
      const response = await this.#pool.request({
        method: request.method,
        path: request.path,
        headers,
        body: request.body ?? null,
        signal: request.signal ?? null,
      });
      const body = await response.body.text();
      return { status: response.statusCode, headers: flattenHeaders(response.headers), body };
    } catch (err) {
      throw bodyError ?? transportError(err, request.signal);
    }
  }

  createAttachmentFromStream(
    address: DocumentAddress,
    upload: { id: string; contentType: string; body: Readable },
    options: CallOptions,
  ): Promise<CosmosReply> {
    return this.send({
      ...options,
      method: 'POST',
      ...attachmentsOf(address),
      headers: { 'content-type': upload.contentType, slug: encodeSlug(upload.id) },
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

  readAttachment(address: DocumentAddress, id: string, options: CallOptions): Promise<CosmosReply> {
    return this.send({ ...options, method: 'GET', ...attachmentOf(address, id) });
  }

  deleteAttachment(address: DocumentAddress, id: string, options: CallOptions): Promise<CosmosReply> {
    return this.send({ ...options, method: 'DELETE', ...attachmentOf(address, id) });
  }

  async close(): Promise<void> {
    await this.#pool.close();
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

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Maps a failure to reach or hear from Cosmos DB to 502/504; never echoes request details. */
function transportError(err: unknown, signal: AbortSignal | undefined): Error {
  if (isCallerError(err)) return err;
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    return isCallerError(reason) ? reason : new BridgeError('RequestAborted', 'The request was aborted.');
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && TIMEOUTS.has(code)) {
    return new BridgeError('UpstreamTimeout', 'Cosmos DB did not answer in time.');
  }
  return new BridgeError('UpstreamUnreachable', 'Cosmos DB could not be reached or dropped the connection.');
}
