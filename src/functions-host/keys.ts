// Function keys, as the host's AuthenticationLevelHandler reads them: the `x-functions-key` header
// if present (its first value, even empty), else the `code` query parameter. The master key grants
// admin level; a function (host) key grants function level.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { queryValue, type Query } from './query.js';
import type { AuthLevel } from './routing/route-table.js';

export interface HostKeys {
  /** The host's `default` function key: valid for every function-level function. */
  functionKey: string;
  masterKey: string;
}

/** A key like the ones the host generates: 40 characters of URL-safe base64. */
export function generateKey(): string {
  return randomBytes(30).toString('base64url');
}

export function keyFromRequest(req: IncomingMessage, query: Query): string | undefined {
  const header = req.headersDistinct['x-functions-key'];
  if (header !== undefined) return header[0];
  return queryValue(query, 'code')?.[0];
}

/** The level a request's key grants. */
export function levelOfKey(key: string | undefined, keys: HostKeys): AuthLevel {
  if (!key) return 'anonymous';
  if (sameSecret(key, keys.masterKey)) return 'admin';
  if (sameSecret(key, keys.functionKey)) return 'function';
  return 'anonymous';
}

export function authorizes(granted: AuthLevel, required: AuthLevel): boolean {
  const rank: Record<AuthLevel, number> = { anonymous: 0, function: 1, admin: 2 };
  return rank[granted] >= rank[required];
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
