import { EmulatorError } from './errors.js';

/**
 * A collection's partition key definition: one path (`Hash`) or up to three (`MultiHash`,
 * hierarchical partition keys). A document's key is the JSON array of the values at those paths.
 */
export interface PartitionKeyDefinition {
  paths: string[];
  kind: 'Hash' | 'MultiHash';
}

/** Partition key problems answer 400 with the service's own wording. */
export const PK_FEWER_COMPONENTS =
  'The partition key supplied in x-ms-partitionkey header has fewer components than defined in the the collection.';
export const PK_MISSING = 'PartitionKey value must be supplied for this operation.';
export const PK_MISMATCH =
  "PartitionKey extracted from document doesn't match the one specified in the header";
export const PK_INVALID =
  "Partition key provided either doesn't correspond to definition in the collection or doesn't match partition key field values specified in the document.";

const MAX_HIERARCHY = 3;

/** Reads `partitionKey` from a collection body; undefined for a collection without one. */
export function parseDefinition(body: unknown): PartitionKeyDefinition | undefined {
  const pk = (body as { partitionKey?: unknown }).partitionKey;
  if (pk === undefined || pk === null) return undefined;
  const { paths, kind } = pk as { paths?: unknown; kind?: unknown };
  const multi = kind === 'MultiHash';
  if (kind !== undefined && kind !== 'Hash' && !multi) {
    throw badRequest(
      `The 'kind' value '${JSON.stringify(kind)}' specified in the partition key definition is invalid.`,
    );
  }
  const valid =
    Array.isArray(paths) &&
    paths.length >= 1 &&
    paths.length <= (multi ? MAX_HIERARCHY : 1) &&
    paths.every((path) => typeof path === 'string' && /^\/[^/]/.test(path));
  if (!valid) {
    throw badRequest(
      multi
        ? `partitionKey.paths must hold 1 to ${MAX_HIERARCHY} paths such as "/tenant" for kind MultiHash.`
        : 'partitionKey.paths must hold exactly one path such as "/id" (kind MultiHash allows up to 3).',
    );
  }
  return { paths: paths as string[], kind: multi ? 'MultiHash' : 'Hash' };
}

/** The key a document carries: the values at the definition's paths (a missing one is `{}`). */
export function keyOfDocument(definition: PartitionKeyDefinition, body: Record<string, unknown>): unknown[] {
  return definition.paths.map((path) => valueAtPath(body, path));
}

/** The `x-ms-documentdb-partitionkey` header as a JSON array, or 400. */
export function parseKeyHeader(header: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(header);
  } catch {
    throw badRequest(PK_INVALID);
  }
  if (!Array.isArray(parsed)) throw badRequest(PK_INVALID);
  return parsed;
}

/** The full key a point operation names, checked against the definition: 400 if absent or short. */
export function fullKeyOf(definition: PartitionKeyDefinition, header: string | undefined): string {
  if (header === undefined) throw badRequest(PK_MISSING);
  const key = parseKeyHeader(header);
  if (key.length < definition.paths.length) throw badRequest(PK_FEWER_COMPONENTS);
  if (key.length > definition.paths.length) throw badRequest(PK_INVALID);
  return JSON.stringify(key);
}

/** `/a/b` → body.a.b; a missing value is the "undefined" partition key `{}`. */
export function valueAtPath(body: Record<string, unknown>, path: string): unknown {
  let value: unknown = body;
  for (const name of path.split('/').filter(Boolean)) {
    value =
      typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined;
  }
  return value === undefined ? {} : value;
}

function badRequest(message: string): EmulatorError {
  return new EmulatorError(400, 'BadRequest', message);
}
