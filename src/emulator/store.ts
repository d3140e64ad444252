import { randomUUID } from 'node:crypto';
import { childRid, mediaIdFor, ridString } from './rids.js';

/** A refusal the emulator answers with, shaped like the service's. */
export class EmulatorError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

export type Resource = Record<string, unknown> & {
  id: string;
  _rid: string;
  _self: string;
  _etag: string;
  _ts: number;
};

/** A managed attachment's bytes: on disk at `path`, or only measured when media is discarded. */
export interface StoredMedia {
  path: string | undefined;
  size: number;
  sha256: string;
}

interface AttachmentEntry {
  rid: Buffer;
  resource: Resource;
  media: StoredMedia | undefined;
  mediaId: string | undefined;
}

interface DocumentEntry {
  rid: Buffer;
  resource: Resource;
  attachments: Map<string, AttachmentEntry>;
}

interface CollectionEntry {
  rid: Buffer;
  resource: Resource;
  partitionPaths: string[] | undefined;
  /** Keyed by partition key (JSON) and id: the same id may live in two partitions. */
  documents: Map<string, DocumentEntry>;
}

interface DatabaseEntry {
  rid: Buffer;
  resource: Resource;
  collections: Map<string, CollectionEntry>;
}

export interface DocumentRef {
  db: string;
  coll: string;
  doc: string;
  /** The raw `x-ms-documentdb-partitionkey` header, if any. */
  partitionKey: string | undefined;
}

export interface MediaRecord {
  media: StoredMedia;
  contentType: string;
}

/** Partition key problems answer 400 with the service's own wording. */
const PK_MISSING_ON_WRITE =
  'The partition key supplied in x-ms-partitionkey header has fewer components than defined in the the collection.';
const PK_MISSING = 'PartitionKey value must be supplied for this operation.';
const PK_MISMATCH = "PartitionKey extracted from document doesn't match the one specified in the header";
const PK_INVALID =
  "Partition key provided either doesn't correspond to definition in the collection or doesn't match partition key field values specified in the document.";

/**
 * The emulator's resource tree, in memory: databases, collections (with a partition key path),
 * documents and attachments. Media bytes live on disk; this holds where.
 */
export class EmulatorStore {
  /** How far the service's clock (`_ts`) is from this machine's: tests set it to model clock skew. */
  clockOffsetMs = 0;
  readonly #databases = new Map<string, DatabaseEntry>();
  readonly #media = new Map<string, { attachment: AttachmentEntry; document: DocumentEntry }>();
  #mediaBytes = 0;

  get mediaBytes(): number {
    return this.#mediaBytes;
  }

  // Databases

  createDatabase(body: unknown): Resource {
    const id = requireId(body);
    if (this.#databases.has(id)) throw conflict();
    const rid = childRid(undefined, 4);
    const resource = this.#stamp({ ...(body as object), id }, rid, `dbs/${ridString(rid)}/`);
    this.#databases.set(id, { rid, resource, collections: new Map() });
    return resource;
  }

  listDatabases(): Resource[] {
    return [...this.#databases.values()].map((db) => db.resource);
  }

  readDatabase(id: string): Resource {
    return this.#database(id).resource;
  }

  deleteDatabase(id: string): StoredMedia[] {
    const db = this.#database(id);
    this.#databases.delete(id);
    return [...db.collections.values()].flatMap((coll) => this.#forgetCollection(coll));
  }

  // Collections

  createCollection(dbId: string, body: unknown): Resource {
    const db = this.#database(dbId);
    const id = requireId(body);
    if (db.collections.has(id)) throw conflict();
    const paths = (body as { partitionKey?: { paths?: unknown } }).partitionKey?.paths;
    if (
      paths !== undefined &&
      (!Array.isArray(paths) || paths.length !== 1 || typeof paths[0] !== 'string')
    ) {
      throw badRequest('partitionKey.paths must hold exactly one path such as "/id".');
    }
    const rid = childRid(db.rid, 4);
    const resource = this.#stamp(
      { ...(body as object), id },
      rid,
      `${db.resource._self}colls/${ridString(rid)}/`,
    );
    db.collections.set(id, {
      rid,
      resource,
      partitionPaths: paths as string[] | undefined,
      documents: new Map(),
    });
    return resource;
  }

  listCollections(dbId: string): Resource[] {
    return [...this.#database(dbId).collections.values()].map((coll) => coll.resource);
  }

  readCollection(dbId: string, id: string): Resource {
    return this.#collection(dbId, id).resource;
  }

  deleteCollection(dbId: string, id: string): StoredMedia[] {
    const coll = this.#collection(dbId, id);
    this.#database(dbId).collections.delete(id);
    return this.#forgetCollection(coll);
  }

  // Documents

  createDocument(
    dbId: string,
    collId: string,
    body: unknown,
    partitionKeyHeader: string | undefined,
  ): Resource {
    const coll = this.#collection(dbId, collId);
    const id = requireId(body);
    const key = documentKey(coll, body as Record<string, unknown>, partitionKeyHeader);
    const mapKey = `${key}\u0000${id}`;
    if (coll.documents.has(mapKey)) throw conflict();
    const rid = childRid(coll.rid, 8);
    const resource = this.#stamp(
      { ...(body as object), id },
      rid,
      `${coll.resource._self}docs/${ridString(rid)}/`,
    );
    resource._attachments = 'attachments/';
    coll.documents.set(mapKey, { rid, resource, attachments: new Map() });
    return resource;
  }

  listDocuments(dbId: string, collId: string): Resource[] {
    return [...this.#collection(dbId, collId).documents.values()].map((doc) => doc.resource);
  }

  readDocument(ref: DocumentRef): Resource {
    return this.#document(ref).resource;
  }

  deleteDocument(ref: DocumentRef): StoredMedia[] {
    const coll = this.#collection(ref.db, ref.coll);
    const doc = this.#document(ref);
    coll.documents.delete(documentMapKey(coll, ref));
    return this.#forgetDocument(doc);
  }

  // Attachments

  /** Fails as the service does before any byte is read: no parent document (404) or a taken id (409). */
  checkAttachmentCreate(ref: DocumentRef, id: string): void {
    if (this.#document(ref).attachments.has(id)) throw attachmentConflict();
  }

  createAttachment(
    ref: DocumentRef,
    body: Record<string, unknown> & { id: string },
    media?: StoredMedia,
  ): Resource {
    const doc = this.#document(ref);
    if (doc.attachments.has(body.id)) throw attachmentConflict();
    const rid = childRid(doc.rid, 4);
    const mediaId = media ? mediaIdFor(rid) : undefined;
    const resource = this.#stamp(
      { ...body, ...(mediaId ? { media: `/media/${mediaId}` } : {}) },
      rid,
      `${doc.resource._self}attachments/${ridString(rid)}`,
    );
    const entry: AttachmentEntry = { rid, resource, media, mediaId };
    doc.attachments.set(body.id, entry);
    if (mediaId && media) {
      this.#media.set(mediaId, { attachment: entry, document: doc });
      this.#mediaBytes += media.size;
    }
    return resource;
  }

  listAttachments(ref: DocumentRef): { documentRid: string; attachments: Resource[] } {
    const doc = this.#document(ref);
    return {
      documentRid: doc.resource._rid,
      attachments: [...doc.attachments.values()].map((att) => att.resource),
    };
  }

  readAttachment(ref: DocumentRef, id: string): Resource {
    return this.#attachment(ref, id).resource;
  }

  /** Replaces an attachment's properties; returns media no longer referenced, for the caller to delete. */
  replaceAttachment(
    ref: DocumentRef,
    id: string,
    body: Record<string, unknown> & { id: string },
    ifMatch: string | undefined,
  ): { resource: Resource; orphaned: StoredMedia[] } {
    const doc = this.#document(ref);
    const entry = this.#attachment(ref, id);
    if (ifMatch !== undefined && ifMatch !== entry.resource._etag) throw preconditionFailed();
    if (body.id !== id && doc.attachments.has(body.id)) throw attachmentConflict();
    const keepsMedia = entry.mediaId !== undefined && body.media === `/media/${entry.mediaId}`;
    const orphaned = !keepsMedia && entry.media ? [this.#dropMedia(entry)] : [];
    doc.attachments.delete(id);
    entry.resource = this.#stamp({ ...body }, entry.rid, entry.resource._self);
    doc.attachments.set(body.id, entry);
    return { resource: entry.resource, orphaned };
  }

  deleteAttachment(ref: DocumentRef, id: string, ifMatch: string | undefined): StoredMedia[] {
    const doc = this.#document(ref);
    const entry = this.#attachment(ref, id);
    if (ifMatch !== undefined && ifMatch !== entry.resource._etag) throw preconditionFailed();
    doc.attachments.delete(id);
    return entry.media ? [this.#dropMedia(entry)] : [];
  }

  // Media

  readMedia(mediaId: string): MediaRecord {
    const found = this.#media.get(mediaId);
    if (!found?.attachment.media) throw notFound();
    return { media: found.attachment.media, contentType: String(found.attachment.resource.contentType) };
  }

  /** Swaps an attachment's bytes; returns the old media for the caller to delete. */
  replaceMedia(
    mediaId: string,
    media: StoredMedia,
    contentType: string,
  ): { resource: Resource; old: StoredMedia } {
    const found = this.#media.get(mediaId);
    const old = found?.attachment.media;
    if (!found || !old) throw notFound();
    const entry = found.attachment;
    entry.media = media;
    this.#mediaBytes += media.size - old.size;
    entry.resource = this.#stamp({ ...entry.resource, contentType }, entry.rid, entry.resource._self);
    return { resource: entry.resource, old };
  }

  /** Every media item still referenced, for tests and the "no orphans" checks. */
  allMedia(): StoredMedia[] {
    return [...this.#media.values()].flatMap(({ attachment }) =>
      attachment.media ? [attachment.media] : [],
    );
  }

  // Lookups

  #database(id: string): DatabaseEntry {
    const db = this.#databases.get(id);
    if (!db) throw notFound();
    return db;
  }

  #collection(dbId: string, id: string): CollectionEntry {
    const coll = this.#database(dbId).collections.get(id);
    if (!coll) throw notFound();
    return coll;
  }

  #document(ref: DocumentRef): DocumentEntry {
    const coll = this.#collection(ref.db, ref.coll);
    const doc = coll.documents.get(documentMapKey(coll, ref));
    if (!doc) throw notFound();
    return doc;
  }

  #attachment(ref: DocumentRef, id: string): AttachmentEntry {
    const entry = this.#document(ref).attachments.get(id);
    if (!entry) throw notFound();
    return entry;
  }

  #dropMedia(entry: AttachmentEntry): StoredMedia {
    const media = entry.media!;
    if (entry.mediaId) this.#media.delete(entry.mediaId);
    this.#mediaBytes -= media.size;
    entry.media = undefined;
    return media;
  }

  #forgetDocument(doc: DocumentEntry): StoredMedia[] {
    return [...doc.attachments.values()].flatMap((att) => (att.media ? [this.#dropMedia(att)] : []));
  }

  #forgetCollection(coll: CollectionEntry): StoredMedia[] {
    return [...coll.documents.values()].flatMap((doc) => this.#forgetDocument(doc));
  }

  #stamp(body: Record<string, unknown> & { id: string }, rid: Buffer, self: string): Resource {
    return stamp(body, rid, self, Math.floor((Date.now() + this.clockOffsetMs) / 1000));
  }
}

function stamp(
  body: Record<string, unknown> & { id: string },
  rid: Buffer,
  self: string,
  ts: number,
): Resource {
  return {
    ...body,
    _rid: ridString(rid),
    _self: self,
    _etag: `"${randomUUID()}"`,
    _ts: ts,
  };
}

function requireId(body: unknown): string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('The JSON body is invalid: expected an object.');
  }
  const id = (body as { id?: unknown }).id;
  if (typeof id !== 'string' || id === '') {
    throw badRequest("The input content is invalid because the required properties - 'id; ' - are missing");
  }
  return id;
}

/** The partition key of a document being created: from its body, checked against the header. */
function documentKey(
  coll: CollectionEntry,
  body: Record<string, unknown>,
  header: string | undefined,
): string {
  if (!coll.partitionPaths) return '[]';
  const extracted = JSON.stringify([valueAtPath(body, coll.partitionPaths[0]!)]);
  if (header === undefined) throw badRequest(PK_MISSING_ON_WRITE);
  if (normalizeHeader(header) !== extracted) throw badRequest(PK_MISMATCH, { 'x-ms-substatus': '1001' });
  return extracted;
}

function documentMapKey(coll: CollectionEntry, ref: DocumentRef): string {
  if (!coll.partitionPaths) return `[]\u0000${ref.doc}`;
  if (ref.partitionKey === undefined) throw badRequest(PK_MISSING);
  return `${normalizeHeader(ref.partitionKey)}\u0000${ref.doc}`;
}

/** The header's JSON array, re-serialised so `["a"]` and `[ "a" ]` (or `\u0061`) are the same key. */
function normalizeHeader(header: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(header);
  } catch {
    throw badRequest(PK_INVALID);
  }
  if (!Array.isArray(parsed) || parsed.length !== 1) throw badRequest(PK_INVALID);
  return JSON.stringify(parsed);
}

/** `/a/b` → body.a.b; a missing value is the "undefined" partition key `{}`. */
function valueAtPath(body: Record<string, unknown>, path: string): unknown {
  let value: unknown = body;
  for (const name of path.split('/').filter(Boolean)) {
    value =
      typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined;
  }
  return value === undefined ? {} : value;
}

export function badRequest(message: string, headers: Record<string, string> = {}): EmulatorError {
  return new EmulatorError(400, 'BadRequest', message, headers);
}

export function notFound(): EmulatorError {
  return new EmulatorError(404, 'NotFound', 'Entity with the specified id does not exist in the system.');
}

function conflict(): EmulatorError {
  return new EmulatorError(409, 'Conflict', 'Entity with the specified id already exists in the system.');
}

function attachmentConflict(): EmulatorError {
  return new EmulatorError(
    409,
    'Conflict',
    'The ID or Slug provided for the new attachment has been taken by an existing attachment.',
  );
}

function preconditionFailed(): EmulatorError {
  return new EmulatorError(
    412,
    'PreconditionFailed',
    'Operation cannot be performed because one of the specified precondition is not met.',
  );
}
