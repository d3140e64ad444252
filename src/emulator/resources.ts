import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { pageSize } from './attachments.js';
import type { Context } from './context.js';
import { EmulatorError, badRequest } from './errors.js';
import { deleteMedia } from './media.js';
import { parseKeyHeader } from './partition-keys.js';
import { applyPatch, patchOf } from './patch.js';
import { matchesCondition, queryPlan, querySpecOf, runQuery, scopedToPartition } from './query.js';
import { feed, flag, header, readJson, sendJson, sendNoContent } from './respond.js';
import type { DocumentRef, Resource, StoredMedia } from './store.js';

/**
 * `GET /`: the database account. Its id is `localhost`, as Microsoft's emulator's is, so
 * `@azure/cosmos` keeps using the endpoint it was given; the legacy SDK follows `writableLocations`,
 * which name the scheme and host the request came in on.
 */
export function account(req: IncomingMessage, res: ServerResponse, ctx: Context): void {
  const scheme = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  const endpoint = `${scheme}://${header(req, 'host') ?? 'localhost'}/`;
  const location = [{ name: 'South Central US', databaseAccountEndpoint: endpoint }];
  sendJson(req, res, ctx, 200, {
    id: 'localhost',
    _rid: 'localhost',
    _self: '',
    _ts: 0,
    _etag: null,
    media: '//media/',
    addresses: '//addresses/',
    _dbs: '//dbs/',
    writableLocations: location,
    readableLocations: location,
    enableMultipleWriteLocations: false,
    userReplicationPolicy: { asyncReplication: false, minReplicaSetSize: 1, maxReplicasetSize: 4 },
    userConsistencyPolicy: { defaultConsistencyLevel: 'Session' },
    systemReplicationPolicy: { minReplicaSetSize: 1, maxReplicasetSize: 4 },
    readPolicy: { primaryReadCoefficient: 1, secondaryReadCoefficient: 1 },
    queryEngineConfiguration: JSON.stringify({
      maxSqlQueryInputLength: 262144,
      maxJoinsPerSqlQuery: 5,
      maxLogicalAndPerSqlQuery: 500,
      maxLogicalOrPerSqlQuery: 500,
      maxUdfRefPerSqlQuery: 10,
      maxInExpressionItemsCount: 16000,
      queryMaxInMemorySortDocumentCount: 500,
      maxQueryRequestTimeoutFraction: 0.9,
      sqlAllowNonFiniteNumbers: false,
      sqlAllowAggregateFunctions: true,
      sqlAllowSubQuery: true,
      sqlAllowScalarSubQuery: true,
      allowNewKeywords: true,
      sqlAllowLike: true,
      sqlAllowGroupByClause: true,
      maxSpatialQueryCells: 12,
      spatialMaxGeometryPointCount: 256,
      sqlAllowTop: true,
      enableSpatialIndexing: true,
    }),
  });
}

/** A POST on a feed that is a query (the SDKs mark it with a header, a content type, or both). */
export function isQuery(req: IncomingMessage): boolean {
  return (
    flag(req, 'x-ms-documentdb-isquery') ||
    header(req, 'content-type')?.split(';')[0]?.trim().toLowerCase() === 'application/query+json'
  );
}

/** Runs a query over a feed's items and answers one page of it. */
export async function answerQuery(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  name: string,
  rid: string,
  items: () => Resource[],
  partitionPaths?: string[],
): Promise<void> {
  const spec = querySpecOf(await readJson(req));
  if (flag(req, 'x-ms-cosmos-is-query-plan-request')) return sendJson(req, res, ctx, 200, queryPlan());
  const scoped =
    header(req, 'x-ms-documentdb-partitionkey') !== undefined ||
    flag(req, 'x-ms-documentdb-query-enablecrosspartition') ||
    header(req, 'x-ms-documentdb-partitionkeyrangeid') !== undefined;
  if (partitionPaths && !scoped && !(await scopedToPartition(spec.query, partitionPaths))) {
    throw badRequest(
      'Cross partition query is required but disabled. Please set x-ms-documentdb-query-enablecrosspartition to true, specify x-ms-documentdb-partitionkey, or revise your query to avoid this exception.',
    );
  }
  return answerPage(req, res, ctx, name, rid, items(), spec);
}

/** A feed read (`GET` on a feed), paged like a query. */
export async function answerFeed(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  name: string,
  rid: string,
  items: Resource[],
): Promise<void> {
  return answerPage(req, res, ctx, name, rid, items, { query: 'SELECT * FROM c' });
}

async function answerPage(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  name: string,
  rid: string,
  items: Resource[],
  spec: { query: string; parameters?: { name: string; value: unknown }[] },
): Promise<void> {
  const { result, continuation } = await runQuery(items, spec, {
    maxItemCount: pageSize(header(req, 'x-ms-max-item-count')),
    continuation: header(req, 'x-ms-continuation'),
  });
  const headers: Record<string, string> = { 'x-ms-item-count': String(result.length) };
  if (continuation) headers['x-ms-continuation'] = continuation;
  sendJson(req, res, ctx, 200, feed(name, rid, result), headers);
}

/** The documents a query or feed read covers: one partition (or a prefix of a hierarchical key), or all. */
export function documentsFor(req: IncomingMessage, ctx: Context, db: string, coll: string): () => Resource[] {
  const keyHeader = header(req, 'x-ms-documentdb-partitionkey');
  const prefix = keyHeader === undefined ? undefined : parseKeyHeader(keyHeader);
  return () => ctx.store.listDocuments(db, coll, prefix);
}

/** `POST .../docs` that is neither a query nor a batch: create, or create-or-replace (upsert). */
export async function writeDocument(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  db: string,
  coll: string,
): Promise<void> {
  if (flag(req, 'x-ms-cosmos-is-batch-request')) {
    throw new EmulatorError(400, 'BadRequest', 'Transactional batches are not supported by this emulator.');
  }
  const body = await readJson(req);
  const partitionKey = header(req, 'x-ms-documentdb-partitionkey');
  if (!flag(req, 'x-ms-documentdb-is-upsert')) {
    return sendJson(req, res, ctx, 201, ctx.store.createDocument(db, coll, body, partitionKey));
  }
  const { resource, created } = ctx.store.upsertDocument(
    db,
    coll,
    body,
    partitionKey,
    header(req, 'if-match'),
  );
  return sendJson(req, res, ctx, created ? 201 : 200, resource);
}

/** `GET`, `PUT`, `PATCH` and `DELETE` on one document. */
export async function documentItem(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  method: string,
  ref: DocumentRef,
): Promise<boolean> {
  const ifMatch = header(req, 'if-match');
  if (method === 'GET') {
    const resource = ctx.store.readDocument(ref);
    if (header(req, 'if-none-match') === resource._etag) {
      res.writeHead(304, { etag: resource._etag });
      res.end();
      return true;
    }
    sendJson(req, res, ctx, 200, resource);
  } else if (method === 'PUT') {
    sendJson(req, res, ctx, 200, ctx.store.replaceDocument(ref, await readJson(req), ifMatch));
  } else if (method === 'PATCH') {
    const { operations, condition } = patchOf(await readJson(req));
    const current = ctx.store.readDocument(ref);
    if (condition !== undefined && !(await matchesCondition(current, condition))) {
      throw new EmulatorError(412, 'PreconditionFailed', 'The patch condition is not met.');
    }
    const patched = applyPatch(current, operations);
    sendJson(req, res, ctx, 200, ctx.store.replaceDocument(ref, patched, ifMatch ?? current._etag));
  } else if (method === 'DELETE') {
    await deleted(req, res, ctx, ctx.store.deleteDocument(ref, ifMatch));
  } else {
    return false;
  }
  return true;
}

/** `GET .../pkranges`: one range covering every key, as a single-partition container has. */
export function partitionKeyRanges(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  collection: Resource,
): void {
  const range = {
    id: '0',
    _rid: `${collection._rid.replace(/=+$/, '')}AgAAAAAAAA==`,
    _self: `${collection._self}pkranges/0/`,
    _etag: '"00000000-0000-0000-0000-000000000000"',
    _ts: collection._ts,
    minInclusive: '',
    maxExclusive: 'FF',
    ridPrefix: 0,
    throughputFraction: 1,
    status: 'online',
    parents: [],
  };
  if (header(req, 'if-none-match') !== undefined && header(req, 'a-im') !== undefined) {
    // Change feed of partition key ranges: nothing changed since the caller's last read.
    res.writeHead(304, { etag: range._etag });
    res.end();
    return;
  }
  sendJson(req, res, ctx, 200, feed('PartitionKeyRanges', collection._rid, [range]), {
    'x-ms-item-count': '1',
    etag: range._etag,
  });
}

/** 204 after a delete, once the media files it freed are gone. */
export async function deleted(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Context,
  media: StoredMedia[],
): Promise<void> {
  await Promise.all(media.map(deleteMedia));
  sendNoContent(req, res, ctx);
}
