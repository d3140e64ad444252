/** The validators of one representation: an entity tag (quoted, `W/` when weak) and a modification time. */
export interface Validators {
  etag: string;
  /** Whole seconds since the epoch. */
  lastModified?: number | undefined;
}

/**
 * RFC 9110 13.2.2, for GET and HEAD: true when the caller's copy is current (answer 304). If-None-Match
 * (weak comparison) decides when present; otherwise If-Modified-Since.
 */
export function notModified(headers: Headers, validators: Validators): boolean {
  const ifNoneMatch = headers.get('if-none-match');
  if (ifNoneMatch !== null) {
    const tags = entityTags(ifNoneMatch);
    return tags === '*' || tags.some((tag) => opaque(tag) === opaque(validators.etag));
  }
  const since = httpDate(headers.get('if-modified-since'));
  return since !== undefined && validators.lastModified !== undefined && validators.lastModified <= since;
}

/**
 * RFC 9110 13.1.5: whether a Range may be honoured. Without If-Range, yes; with an entity tag, only when
 * it matches the current one strongly (both strong, same opaque tag); with a date, only when it equals
 * the current modification time. Anything else sends the whole representation.
 */
export function rangeAllowed(headers: Headers, validators: Validators): boolean {
  const ifRange = headers.get('if-range')?.trim();
  if (ifRange === undefined) return true;
  if (ifRange.startsWith('"') || ifRange.startsWith('W/')) {
    return !isWeak(ifRange) && !isWeak(validators.etag) && ifRange === validators.etag;
  }
  const date = httpDate(ifRange);
  return date !== undefined && date === validators.lastModified;
}

/**
 * RFC 9110 13.1.1 for If-Match: true when the condition holds (absent, `*` on an existing resource,
 * or one tag matching the current one strongly).
 */
export function ifMatchHolds(ifMatch: string | null, etag: string): boolean {
  if (ifMatch === null) return true;
  const tags = entityTags(ifMatch);
  return tags === '*' || tags.some((tag) => !isWeak(tag) && !isWeak(etag) && tag === etag);
}

/** The entity tags of an If-Match or If-None-Match value, or `*`; malformed members are skipped. */
export function entityTags(value: string): string[] | '*' {
  if (value.trim() === '*') return '*';
  return [...value.matchAll(/(?:W\/)?"[\x21\x23-\x7e\x80-\xff]*"/g)].map((m) => m[0]);
}

/** An HTTP date (IMF-fixdate or the obsolete forms Date.parse reads) in whole seconds; undefined if invalid. */
export function httpDate(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

function isWeak(tag: string): boolean {
  return tag.startsWith('W/');
}

function opaque(tag: string): string {
  return isWeak(tag) ? tag.slice(2) : tag;
}
