import { badRequest, notFound } from './errors.js';
import { attachmentRidOfMediaId } from './rids.js';

/** A request path taken apart: its segments, and what a master-key signature must cover for it. */
export interface RequestTarget {
  /** Decoded path segments, e.g. `["dbs", "demo", "colls", "items"]`. */
  segments: string[];
  /** True when the ids are `_rid`s (`dbs/Sl8fAA==/colls/...`), as the SDKs' `_self` links are. */
  ridBased: boolean;
  resourceType: string;
  resourceLink: string;
}

/**
 * Parses a request URL's path. Leading slashes are collapsed first: the legacy SDK asks for
 * `//media/{id}` (it prefixes the attachment's `/media/...` link with another `/`), which a URL parser
 * would take for a host name.
 */
export function targetOf(url: string): RequestTarget {
  const pathname = new URL(url.replace(/^\/+/, '/'), 'http://emulator').pathname;
  const segments = pathname
    .split('/')
    .filter(Boolean)
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        throw badRequest('The request path is not valid percent-encoded.');
      }
    });
  const ridBased = isRidBased(segments);
  return { segments, ridBased, ...signedPart(segments, ridBased) };
}

/**
 * The SDKs' rule for telling links apart: a path is rid-based when its database segment is an
 * 8-character base64 string of 4 bytes (a database `_rid`). Names never look like that in practice.
 */
function isRidBased(segments: string[]): boolean {
  const id = segments[1];
  if (segments[0]?.toLowerCase() !== 'dbs' || id === undefined || id.length !== 8) return false;
  return (
    /^[A-Za-z0-9+/-]{6}==$|^[A-Za-z0-9+/-]{8}$/.test(id) &&
    Buffer.from(id.replace(/-/g, '/'), 'base64').length === 4
  );
}

/**
 * What the signature covers: a path ending in an id signs that resource, a feed path its parent.
 * Name-based links are signed as they are; rid-based ones as the last `_rid`, lowercased; media as the
 * attachment `_rid` inside the media id, lowercased (docs/cosmos-rest.md).
 */
function signedPart(segments: string[], ridBased: boolean): { resourceType: string; resourceLink: string } {
  const n = segments.length;
  if (n === 0) return { resourceType: '', resourceLink: '' };
  if (segments[0] === 'media' && n === 2) {
    const rid = attachmentRidOfMediaId(segments[1]!);
    if (rid === undefined) throw notFound();
    return { resourceType: 'media', resourceLink: rid.toLowerCase() };
  }
  const item = n % 2 === 0;
  const resourceType = item ? segments[n - 2]! : segments[n - 1]!;
  const linkSegments = item ? segments : segments.slice(0, -1);
  if (!ridBased) return { resourceType, resourceLink: linkSegments.join('/') };
  return { resourceType, resourceLink: (linkSegments.at(-1) ?? '').toLowerCase() };
}
