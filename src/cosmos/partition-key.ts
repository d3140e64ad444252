import { BridgeError } from '../http/errors.js';

/**
 * A partition key value in the `x-ms-documentdb-partitionkey` header format: a JSON array of one
 * value per key path. `{}` stands for "undefined" (a document without the key).
 */
export type PartitionKey = readonly (string | number | boolean | null | Record<string, never>)[];

const MAX_HEADER_CHARS = 2048;

/** Parses the Cosmos JSON-array header format, e.g. `["user-42"]`. */
export function parsePartitionKeyHeader(value: string, source: string): PartitionKey {
  if (value.length > MAX_HEADER_CHARS) {
    throw new BridgeError('InvalidPartitionKey', `The partition key in ${source} is too long.`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new BridgeError(
      'InvalidPartitionKey',
      `The partition key in ${source} must be a JSON array such as ["user-42"].`,
    );
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every(isKeyComponent)) {
    throw new BridgeError(
      'InvalidPartitionKey',
      `The partition key in ${source} must be a non-empty JSON array of strings, numbers, booleans, null or {}.`,
    );
  }
  return parsed as PartitionKey;
}

/** The `partitionKey` form field: a JSON array as in the header, or else the plain string value. */
export function parsePartitionKeyField(value: string): PartitionKey {
  const trimmed = value.trim();
  return trimmed.startsWith('[') ? parsePartitionKeyHeader(trimmed, 'the partitionKey field') : [value];
}

/** Header encoding: JSON with every non-ASCII character escaped as \uXXXX, as the SDKs send it. */
export function encodePartitionKey(key: PartitionKey): string {
  return JSON.stringify(key).replace(
    /[\u007f-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function samePartitionKey(a: PartitionKey, b: PartitionKey): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function isKeyComponent(value: unknown): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      return !Array.isArray(value) && Object.keys(value).length === 0;
    default:
      return false;
  }
}
