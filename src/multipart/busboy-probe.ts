import type busboy from 'busboy';
// busboy's own helpers (busboy 1.6.0, pinned), so parts are classified exactly as busboy classifies
// them; a static import (not createRequire), so the deployment bundle carries them along.
import busboyUtils from 'busboy/lib/utils.js';

const { parseDisposition, parseContentType, getDecoder } = busboyUtils;
const PARAM_DECODER = getDecoder('utf8');

/** A part's headers as busboy read them: what it will make of the part. */
export type PartKind =
  /** busboy will skip it without a word: no form-data Content-Disposition, or a filename* it cannot decode. */
  | { kind: 'skipped' }
  | { kind: 'file'; name: string | undefined }
  | { kind: 'field'; name: string | undefined; mimeType: string };

export interface PartWatcher {
  /** A part's headers were read (before busboy acts on them). */
  onPart(part: PartKind): void;
  /** Bytes of the current part went by (its headers included). */
  onBytes(count: number): void;
  /** A delimiter: the current part ended. */
  onBoundary(): void;
}

interface MultipartInternals {
  _bparser?: {
    _cb?: (isMatch: boolean, data: Buffer | undefined, start: number, end: number, safe: boolean) => void;
  };
  _hparser?: unknown;
}

/**
 * Watches busboy's own scan of a multipart body: the data between delimiters as its boundary search
 * hands it over, and each part's headers as its header parser finishes them. busboy reports fields
 * only once they end and skips some parts silently; watching its scan tells both as they happen, with
 * no second pass over the bytes. Depends on busboy 1.6.0 and streamsearch 1.1.0 internals (both pinned);
 * `attachProbe` throws if they are not as expected, and the suite checks it.
 */
export function attachProbe(parser: busboy.Busboy, watcher: PartWatcher): void {
  const internals = parser as unknown as MultipartInternals;
  const search = internals._bparser;
  const scan = search?._cb;
  if (typeof scan !== 'function' || !('_hparser' in internals)) {
    throw new Error(
      'busboy internals are not as expected (busboy 1.6.0 with streamsearch 1.1.0 is required)',
    );
  }
  search!._cb = (isMatch, data, start, end, safe) => {
    // busboy first: a segment that starts a part carries its headers, which it reads now.
    scan(isMatch, data, start, end, safe);
    if (data !== undefined && end > start) watcher.onBytes(end - start);
    if (isMatch) watcher.onBoundary();
  };
  // busboy points `_hparser` at its one header parser at the start of each part: wrap its callback once.
  let headerParser = internals._hparser;
  const wrapped = new WeakSet<object>();
  Object.defineProperty(internals, '_hparser', {
    configurable: true,
    get: () => headerParser,
    set(value: unknown) {
      headerParser = value;
      const target = value as { cb?: (header: Record<string, string[]>) => void } | null;
      if (target && typeof target.cb === 'function' && !wrapped.has(target)) {
        wrapped.add(target);
        const done = target.cb;
        target.cb = (header) => {
          watcher.onPart(classify(header));
          done.call(target, header);
        };
      }
    },
  });
}

/** What busboy 1.6 will make of a part with these headers (its own rules, lib/types/multipart.js). */
function classify(header: Record<string, string[]>): PartKind {
  const disposition = header['content-disposition']?.[0];
  const parsed = disposition === undefined ? undefined : parseDisposition(disposition, PARAM_DECODER);
  if (!parsed || parsed.type !== 'form-data') return { kind: 'skipped' };
  const filename = parsed.params['filename*'] ?? parsed.params.filename;
  const type = header['content-type'] ? parseContentType(header['content-type'][0]!) : undefined;
  const mimeType = type ? `${type.type}/${type.subtype}` : 'text/plain';
  if (mimeType === 'application/octet-stream' || filename !== undefined)
    return { kind: 'file', name: parsed.params.name };
  return { kind: 'field', name: parsed.params.name, mimeType };
}
