import { randomUUID } from 'node:crypto';
import { attachmentConflict, badRequest, conflict, notFound, preconditionFailed } from './errors.js';
import {
  PK_FEWER_COMPONENTS,
  PK_MISMATCH,
  fullKeyOf,
  keyOfDocument,
  parseDefinition,
  parseKeyHeader,
  type PartitionKeyDefinition,
} from './partition-keys.js';
import { childRid, mediaIdFor, ridString } from './rids.js';

export { EmulatorError, badRequest, notFound } from './errors.js';

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

interface Entry {
  rid: Buffer;
  resource: Resource;
  /** Creation order: feeds list in it, and continuation tokens point into it. */
  seq: number;
}

interface AttachmentEntry extends Entry {
  media: StoredMedia | undefined;
  mediaId: string | undefined;
}

interface DocumentEntry extends Entry {
  /** The document's partition key, as a JSON array (`[]` in a collection without one). */
  key: string;
  attachments: Map<string, AttachmentEntry>;
}

interface CollectionEntry extends Entry {
  partitionKey: PartitionKeyDefinition | undefined;
  /** Keyed by partition key (JSON) and id: the same id may live in two partitions. */
  documents: Map<string, DocumentEntry>;
}

interface DatabaseEntry extends Entry {
  collections: Map<string, CollectionEntry>;
}

/** Where a `_rid` lives: the chain of entries down to it. */
interface Located {
  db: DatabaseEntry;
  coll?: CollectionEntry;
  doc?: DocumentEntry;
  att?: AttachmentEntry;
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

/** An attachment body as a create or replace carries it: id and the caller's properties. */
export type AttachmentBody = Record<string, unknown> & { id: string };

/** What a rid-based path names, turned into ids (and the document's partition key, when it names one). */
export interface ResolvedNames {
  ids: string[];
  partitionKey: string | undefined;
}

const SYSTEM_PROPERTIES = ['_rid', '_self', '_etag', '_ts', '_attachments'];

/**
 * The emulator's resource tree, in memory: databases, collections (with a partition key definition,
 * hierarchical ones included), documents and attachments, each found by id or by `_rid`. Media bytes
 * live on disk; this holds where.
 */
export class EmulatorStore {
  /** How far the service's clock (`_ts`) is from this machine's: tests set it to model clock skew. */
  clockOffsetMs = 0;
  readonly #databases = new Map<string, DatabaseEntry>();
  readonly #media = new Map<string, { attachment: AttachmentEntry; document: DocumentEntry }>();
  readonly #byRid = new Map<string, Located>();
  #mediaBytes = 0;
  #seq = 0;

  get mediaBytes(): number {
    return this.#mediaBytes;
  }

  // Databases

  createDatabase(body: unknown): Resource {
    const id = requireId(body);
    if (this.#databases.has(id)) throw conflict();
    const rid = childRid(undefined, 'database');
    const entry: DatabaseEntry = {
      ...this.#entry(body, id, rid, `dbs/${ridString(rid)}/`),
      collections: new Map(),
    };
    entry.resource = { ...entry.resource, _colls: 'colls/', _users: 'users/' };
    this.#databases.set(id, entry);
    this.#byRid.set(entry.resource._rid, { db: entry });
    return entry.resource;
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
    const partitionKey = parseDefinition(body);
    if (db.collections.has(id)) throw conflict();
    const rid = childRid(db.rid, 'collection');
    const entry: CollectionEntry = {
      ...this.#entry(body, id, rid, `${db.resource._self}colls/${ridString(rid)}/`),
      partitionKey,
      documents: new Map(),
    };
    entry.resource = {
      indexingPolicy: { indexingMode: 'consistent', automatic: true, includedPaths: [{ path: '/*' }] },
      ...entry.resource,
      ...(partitionKey
        ? { partitionKey: { version: 2, ...(body as { partitionKey: object }).partitionKey } }
        : {}),
      _docs: 'docs/',
      _sprocs: 'sprocs/',
      _triggers: 'triggers/',
      _udfs: 'udfs/',
      _conflicts: 'conflicts/',
    };
    db.collections.set(id, entry);
    this.#byRid.set(entry.resource._rid, { db, coll: entry });
    return entry.resource;
  }

  listCollections(dbId: string): Resource[] {
    return [...this.#database(dbId).collections.values()].map((coll) => coll.resource);
  }

  readCollection(dbId: string, id: string): Resource {
    return this.#collection(dbId, id).resource;
  }

  /** A collection's partition key definition, undefined when it has none. */
  partitionKeyOf(dbId: string, id: string): PartitionKeyDefinition | undefined {
    return this.#collection(dbId, id).partitionKey;
  }

  /** Replaces a collection's properties (indexing policy, TTL...); its id and partition key stay. */
  replaceCollection(dbId: string, id: string, body: unknown, ifMatch: string | undefined): Resource {
    const coll = this.#collection(dbId, id);
    checkIfMatch(coll, ifMatch);
    if (requireId(body) !== id) throw badRequest('A collection cannot be renamed.');
    const { partitionKey: _, ...rest } = body as Record<string, unknown>;
    coll.resource = this.#restamp(coll, { ...coll.resource, ...rest, id });
    return coll.resource;
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
    return this.#createDocument(this.#collection(dbId, collId), body, partitionKeyHeader);
  }

  /** Create-or-replace: `created` says which happened (201 or 200). */
  upsertDocument(
    dbId: string,
    collId: string,
    body: unknown,
    partitionKeyHeader: string | undefined,
    ifMatch: string | undefined,
  ): { resource: Resource; created: boolean } {
    const coll = this.#collection(dbId, collId);
    const id = requireId(body);
    const key = documentKey(coll, body as Record<string, unknown>, partitionKeyHeader);
    const existing = coll.documents.get(`${key}\u0000${id}`);
    if (!existing) {
      if (ifMatch !== undefined) throw preconditionFailed();
      return { resource: this.#createDocument(coll, body, partitionKeyHeader), created: true };
    }
    checkIfMatch(existing, ifMatch);
    existing.resource = this.#restamp(existing, { ...withoutSystem(body), id, _attachments: 'attachments/' });
    return { resource: existing.resource, created: false };
  }

  /** The documents of a collection, in creation order; with `keyPrefix`, only that partition (or its sub-partitions). */
  listDocuments(dbId: string, collId: string, keyPrefix?: unknown[]): Resource[] {
    const coll = this.#collection(dbId, collId);
    const docs = [...coll.documents.values()].sort((a, b) => a.seq - b.seq);
    if (keyPrefix === undefined || !coll.partitionKey) return docs.map((doc) => doc.resource);
    if (keyPrefix.length > coll.partitionKey.paths.length) throw badRequest(PK_FEWER_COMPONENTS);
    const prefix = keyPrefix.map((value) => JSON.stringify(value));
    return docs
      .filter((doc) => {
        const key = (JSON.parse(doc.key) as unknown[]).map((value) => JSON.stringify(value));
        return prefix.every((value, i) => key[i] === value);
      })
      .map((doc) => doc.resource);
  }

  readDocument(ref: DocumentRef): Resource {
    return this.#document(ref).resource;
  }

  /** Replaces a document's body; its partition key must stay (400 otherwise), a new id must be free (409). */
  replaceDocument(ref: DocumentRef, body: unknown, ifMatch: string | undefined): Resource {
    const coll = this.#collection(ref.db, ref.coll);
    const doc = this.#document(ref);
    checkIfMatch(doc, ifMatch);
    const id = requireId(body);
    const key = coll.partitionKey
      ? JSON.stringify(keyOfDocument(coll.partitionKey, body as Record<string, unknown>))
      : '[]';
    if (key !== doc.key) throw badRequest(PK_MISMATCH, { 'x-ms-substatus': '1001' });
    if (id !== doc.resource.id && coll.documents.has(`${key}\u0000${id}`)) throw conflict();
    coll.documents.delete(`${doc.key}\u0000${doc.resource.id}`);
    doc.resource = this.#restamp(doc, { ...withoutSystem(body), id, _attachments: 'attachments/' });
    coll.documents.set(`${key}\u0000${id}`, doc);
    return doc.resource;
  }

  deleteDocument(ref: DocumentRef, ifMatch?: string): StoredMedia[] {
    const coll = this.#collection(ref.db, ref.coll);
    const doc = this.#document(ref);
    checkIfMatch(doc, ifMatch);
    coll.documents.delete(`${doc.key}\u0000${doc.resource.id}`);
    return this.#forgetDocument(doc);
  }

  // Attachments

  /** Fails as the service does before any byte is read: no parent document (404) or a taken id (409). */
  checkAttachmentCreate(ref: DocumentRef, id: string): void {
    if (this.#document(ref).attachments.has(id)) throw attachmentConflict();
  }

  /** Fails as the service would before any byte of a replace is read: no such attachment, stale etag, taken id. */
  checkAttachmentReplace(ref: DocumentRef, id: string, newId: string, ifMatch: string | undefined): void {
    const doc = this.#document(ref);
    checkIfMatch(this.#attachment(ref, id), ifMatch);
    if (newId !== id && doc.attachments.has(newId)) throw attachmentConflict();
  }

  createAttachment(ref: DocumentRef, body: AttachmentBody, media?: StoredMedia): Resource {
    const doc = this.#document(ref);
    if (doc.attachments.has(body.id)) throw attachmentConflict();
    const rid = childRid(doc.rid, 'attachment');
    const mediaId = media ? mediaIdFor(rid) : undefined;
    const managedLink = mediaId ? { media: `/media/${mediaId}` } : {};
    const self = `${doc.resource._self}attachments/${ridString(rid)}`;
    const entry: AttachmentEntry = {
      ...this.#entry({ ...body, ...managedLink }, body.id, rid, self),
      media: undefined,
      mediaId: undefined,
    };
    doc.attachments.set(body.id, entry);
    this.#byRid.set(entry.resource._rid, { ...this.#locate(doc), att: entry });
    if (media && mediaId) this.#attachMedia(doc, entry, media, mediaId);
    return entry.resource;
  }

  /**
   * Create-or-replace by id (`x-ms-documentdb-is-upsert`). Returns media no longer referenced, for the
   * caller to delete.
   */
  upsertAttachment(
    ref: DocumentRef,
    body: AttachmentBody,
    ifMatch: string | undefined,
    media?: StoredMedia,
  ): { resource: Resource; created: boolean; orphaned: StoredMedia[] } {
    const doc = this.#document(ref);
    if (!doc.attachments.has(body.id)) {
      if (ifMatch !== undefined) throw preconditionFailed();
      return { resource: this.createAttachment(ref, body, media), created: true, orphaned: [] };
    }
    return { ...this.replaceAttachment(ref, body.id, body, ifMatch, media), created: false };
  }

  listAttachments(ref: DocumentRef): { documentRid: string; attachments: Resource[] } {
    const doc = this.#document(ref);
    return {
      documentRid: doc.resource._rid,
      attachments: this.#attachmentsInOrder(doc).map((att) => att.resource),
    };
  }

  /** One page of a document's attachments, after creation sequence `after`; `last` is the page's last one. */
  pageAttachments(
    ref: DocumentRef,
    after: number,
    max: number,
  ): { documentRid: string; page: Resource[]; last: number; more: boolean } {
    const doc = this.#document(ref);
    const rest = this.#attachmentsInOrder(doc).filter((att) => att.seq > after);
    const page = rest.slice(0, max);
    return {
      documentRid: doc.resource._rid,
      page: page.map((att) => att.resource),
      last: page.at(-1)?.seq ?? after,
      more: rest.length > page.length,
    };
  }

  readAttachment(ref: DocumentRef, id: string): Resource {
    return this.#attachment(ref, id).resource;
  }

  /**
   * Replaces an attachment: with a JSON body (its properties; a managed attachment keeps its bytes only
   * if `media` still names them), or with new bytes (`media` given: a managed attachment whose media
   * link stays). Returns media no longer referenced, for the caller to delete.
   */
  replaceAttachment(
    ref: DocumentRef,
    id: string,
    body: AttachmentBody,
    ifMatch: string | undefined,
    media?: StoredMedia,
  ): { resource: Resource; orphaned: StoredMedia[] } {
    this.checkAttachmentReplace(ref, id, body.id, ifMatch);
    const doc = this.#document(ref);
    const entry = this.#attachment(ref, id);
    const orphaned: StoredMedia[] = [];
    const ownLink = entry.mediaId === undefined ? undefined : `/media/${entry.mediaId}`;
    if (media) {
      if (entry.media) orphaned.push(this.#dropMedia(entry));
      this.#attachMedia(doc, entry, media, entry.mediaId ?? mediaIdFor(entry.rid));
    } else if (entry.media && body.media !== ownLink) {
      orphaned.push(this.#dropMedia(entry));
      entry.mediaId = undefined;
    }
    doc.attachments.delete(id);
    const managedLink = entry.media ? { media: `/media/${entry.mediaId}` } : {};
    entry.resource = this.#restamp(entry, { ...withoutSystem(body), ...managedLink, id: body.id });
    doc.attachments.set(body.id, entry);
    return { resource: entry.resource, orphaned };
  }

  deleteAttachment(ref: DocumentRef, id: string, ifMatch: string | undefined): StoredMedia[] {
    const doc = this.#document(ref);
    const entry = this.#attachment(ref, id);
    checkIfMatch(entry, ifMatch);
    doc.attachments.delete(id);
    return entry.media ? [this.#dropMedia(entry)] : [];
  }

  // Media

  readMedia(mediaId: string): MediaRecord {
    const found = this.#media.get(mediaId);
    if (!found?.attachment.media || !this.#isLive(found.document, found.attachment)) throw notFound();
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
    if (!found || !old || !this.#isLive(found.document, found.attachment)) throw notFound();
    const entry = found.attachment;
    entry.media = media;
    this.#mediaBytes += media.size - old.size;
    entry.resource = this.#restamp(entry, { ...entry.resource, contentType });
    return { resource: entry.resource, old };
  }

  /** Every media item still referenced, for tests and the "no orphans" checks. */
  allMedia(): StoredMedia[] {
    return [...this.#media.values()].flatMap(({ attachment }) =>
      attachment.media ? [attachment.media] : [],
    );
  }

  // Rid-based links

  /**
   * Turns the rids of a rid-based path (`dbs/{rid}/colls/{rid}/...`, one per level) into ids; 404 when
   * a rid names nothing, or something that is not where the path puts it.
   */
  namesOfRids(rids: string[]): ResolvedNames {
    const located = this.#byRid.get(rids.at(-1) ?? '');
    if (!located) throw notFound();
    const chain = [located.db, located.coll, located.doc, located.att].filter((e) => e !== undefined);
    if (chain.length !== rids.length || chain.some((entry, i) => entry.resource._rid !== rids[i]))
      throw notFound();
    if (!this.#isAttached(located)) throw notFound();
    return { ids: chain.map((entry) => entry.resource.id), partitionKey: located.doc?.key };
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
    const key = coll.partitionKey ? fullKeyOf(coll.partitionKey, ref.partitionKey) : '[]';
    const doc = coll.documents.get(`${key}\u0000${ref.doc}`);
    if (!doc) throw notFound();
    return doc;
  }

  #attachment(ref: DocumentRef, id: string): AttachmentEntry {
    const entry = this.#document(ref).attachments.get(id);
    if (!entry) throw notFound();
    return entry;
  }

  #attachmentsInOrder(doc: DocumentEntry): AttachmentEntry[] {
    return [...doc.attachments.values()].sort((a, b) => a.seq - b.seq);
  }

  #createDocument(coll: CollectionEntry, body: unknown, partitionKeyHeader: string | undefined): Resource {
    const id = requireId(body);
    const key = documentKey(coll, body as Record<string, unknown>, partitionKeyHeader);
    const mapKey = `${key}\u0000${id}`;
    if (coll.documents.has(mapKey)) throw conflict();
    const rid = childRid(coll.rid, 'document');
    const base = this.#entry(body, id, rid, `${coll.resource._self}docs/${ridString(rid)}/`);
    const entry: DocumentEntry = { ...base, key, attachments: new Map() };
    entry.resource = { ...entry.resource, _attachments: 'attachments/' };
    coll.documents.set(mapKey, entry);
    const db = this.#byRid.get(coll.resource._rid)!.db;
    this.#byRid.set(entry.resource._rid, { db, coll, doc: entry });
    return entry.resource;
  }

  #locate(doc: DocumentEntry): Located {
    return this.#byRid.get(doc.resource._rid)!;
  }

  /** Whether every entry of a chain is still in its parent (not deleted, or deleted with a parent). */
  #isAttached({ db, coll, doc, att }: Located): boolean {
    if (this.#databases.get(db.resource.id) !== db) return false;
    if (coll && db.collections.get(coll.resource.id) !== coll) return false;
    if (doc && coll?.documents.get(`${doc.key}\u0000${doc.resource.id}`) !== doc) return false;
    return !att || doc?.attachments.get(att.resource.id) === att;
  }

  #isLive(doc: DocumentEntry, att: AttachmentEntry): boolean {
    const located = this.#byRid.get(att.resource._rid);
    return located !== undefined && located.doc === doc && this.#isAttached(located);
  }

  #attachMedia(doc: DocumentEntry, entry: AttachmentEntry, media: StoredMedia, mediaId: string): void {
    entry.media = media;
    entry.mediaId = mediaId;
    this.#media.set(mediaId, { attachment: entry, document: doc });
    this.#mediaBytes += media.size;
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

  #entry(body: unknown, id: string, rid: Buffer, self: string): Entry {
    this.#seq += 1;
    const entry: Entry = { rid, seq: this.#seq, resource: undefined as unknown as Resource };
    entry.resource = stamp({ ...withoutSystem(body), id }, ridString(rid), self, this.#now());
    return entry;
  }

  /** New properties on an existing entry: same `_rid` and `_self`, a new `_etag` and `_ts`. */
  #restamp(entry: Entry, body: Record<string, unknown> & { id: string }): Resource {
    return stamp(withoutSystem(body), entry.resource._rid, entry.resource._self, this.#now(), body);
  }

  #now(): number {
    return Math.floor((Date.now() + this.clockOffsetMs) / 1000);
  }
}

function stamp(
  body: Record<string, unknown> & { id: string },
  rid: string,
  self: string,
  ts: number,
  links: Record<string, unknown> = {},
): Resource {
  // Feed links (`_attachments`, `_docs`...) are system properties a replace keeps.
  const kept = Object.fromEntries(
    Object.entries(links).filter(
      ([name]) => name.startsWith('_') && !SYSTEM_PROPERTIES.slice(0, 4).includes(name),
    ),
  );
  return { ...body, ...kept, _rid: rid, _self: self, _etag: `"${randomUUID()}"`, _ts: ts };
}

/** A body without the system properties a caller may send back (the service sets its own). */
function withoutSystem(body: unknown): Record<string, unknown> & { id: string } {
  const copy = { ...(body as Record<string, unknown>) };
  for (const name of SYSTEM_PROPERTIES) delete copy[name];
  return copy as Record<string, unknown> & { id: string };
}

function checkIfMatch(entry: Entry, ifMatch: string | undefined): void {
  if (ifMatch !== undefined && ifMatch !== '*' && ifMatch !== entry.resource._etag)
    throw preconditionFailed();
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

/** The partition key of a document being written: from its body, checked against the header. */
function documentKey(
  coll: CollectionEntry,
  body: Record<string, unknown>,
  header: string | undefined,
): string {
  if (!coll.partitionKey) return '[]';
  const extracted = JSON.stringify(keyOfDocument(coll.partitionKey, body));
  if (header === undefined) throw badRequest(PK_FEWER_COMPONENTS);
  const given = parseKeyHeader(header);
  if (given.length < coll.partitionKey.paths.length) throw badRequest(PK_FEWER_COMPONENTS);
  if (JSON.stringify(given) !== extracted) throw badRequest(PK_MISMATCH, { 'x-ms-substatus': '1001' });
  return extracted;
}
