import { createHmac, type KeyObject } from 'node:crypto';

/** What Cosmos DB's master-key signature covers (see docs/cosmos-rest.md). */
export interface SignedRequest {
  verb: string;
  /** e.g. `attachments`, `media`, `docs`. */
  resourceType: string;
  /** e.g. `dbs/demo/colls/items/docs/welcome`: ids as they are (not URL-encoded), no leading or trailing slash. */
  resourceLink: string;
  /** The exact `x-ms-date` header value (RFC 1123). */
  date: string;
}

export function stringToSign({ verb, resourceType, resourceLink, date }: SignedRequest): string {
  return `${verb.toLowerCase()}\n${resourceType.toLowerCase()}\n${resourceLink}\n${date.toLowerCase()}\n\n`;
}

/** The base64 HMAC-SHA256 signature of a request under a master key. */
export function signature(key: KeyObject, request: SignedRequest): string {
  return createHmac('sha256', key).update(stringToSign(request), 'utf8').digest('base64');
}

/** The `authorization` header value: URL-encoded `type=master&ver=1.0&sig=...`. */
export function masterKeyAuthorization(key: KeyObject, request: SignedRequest): string {
  return encodeURIComponent(`type=master&ver=1.0&sig=${signature(key, request)}`);
}

/** `x-ms-date` for now, in the RFC 1123 form Cosmos DB expects. */
export function requestDate(now: Date = new Date()): string {
  return now.toUTCString();
}

/** Newest REST version; attachments exist in all of them. */
export const API_VERSION = '2018-12-31';

/** The version, date and master-key signature every request carries. */
export function signedHeaders(
  key: KeyObject,
  target: Omit<SignedRequest, 'date'>,
  date: string = requestDate(),
): Record<string, string> {
  return {
    'x-ms-version': API_VERSION,
    'x-ms-date': date,
    authorization: masterKeyAuthorization(key, { ...target, date }),
  };
}
