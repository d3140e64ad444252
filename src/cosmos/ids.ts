import { BridgeError } from '../http/errors.js';

const MAX_ID_CHARS = 255;
// Cosmos DB forbids these in ids; control characters would also corrupt headers and logs.
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[/\\?#\u0000-\u001f\u007f-\u009f]/u;
// String.prototype.isWellFormed is not in Node 20's typings target; this is the same test.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `id` is not a valid Cosmos DB resource id, or undefined when it is. */
export function idProblem(id: string): string | undefined {
  if (id.length === 0) return 'is empty';
  if (LONE_SURROGATE.test(id)) return 'is not well-formed Unicode';
  if ([...id].length > MAX_ID_CHARS) return `is longer than ${MAX_ID_CHARS} characters`;
  if (FORBIDDEN.test(id)) return 'contains "/", "\\", "?", "#" or a control character';
  if (id.endsWith(' ')) return 'ends with a space';
  // A dot segment would be resolved in the upstream URL: an attachment named ".." is its document.
  if (id === '.' || id === '..') return 'is a dot segment ("." or "..")';
  return undefined;
}

export function assertValidId(id: string, what: string): string {
  const problem = idProblem(id);
  if (problem !== undefined) throw new BridgeError('InvalidId', `The ${what} ${problem}.`);
  return id;
}

/**
 * RFC 5023 Slug: printable ASCII stays as it is, everything else (and "%") is sent as percent-encoded
 * UTF-8, so any Unicode attachment id survives an HTTP header.
 */
export function encodeSlug(id: string): string {
  return id.replace(/[^\x20-\x24\x26-\x7e]+/gu, (run) => encodeURIComponent(run));
}

/** The attachment id a Slug header names; malformed percent-encoding is a 400. */
export function decodeSlug(slug: string): string {
  try {
    return decodeURIComponent(slug);
  } catch {
    throw new BridgeError('InvalidHeader', 'The Slug header has malformed percent-encoding.');
  }
}

/**
 * What a media request signs: the attachment `_rid` inside the media id (its first 20 bytes, `-` read
 * as `/`), as base64 with `/` written as `-`, lowercased, as the Cosmos DB SDKs sign it.
 */
export function mediaResourceLink(mediaId: string): string {
  const rid = Buffer.from(mediaId.replace(/-/g, '/'), 'base64').subarray(0, 20);
  return rid.toString('base64').replace(/\//g, '-').toLowerCase();
}
