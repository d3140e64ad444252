/** Inclusive byte positions, as in `Content-Range: bytes start-end/size`. */
export interface ResolvedRange {
  start: number;
  end: number;
}

/**
 * What a `Range` header asks of a representation of `size` bytes (RFC 9110 14.1.2, 14.2):
 * - `whole`: no header, another unit, a malformed one, or several ranges (the bridge sends the whole
 *   body for those: one range is what media players and resumable downloads send, and a
 *   multipart/byteranges answer would buy nothing but parsing risk);
 * - `range`: one satisfiable range, clipped to the size (`a-b`, `a-`, `-n`);
 * - `unsatisfiable`: one range that starts past the end, or a suffix of zero bytes (416).
 */
export type RangeRequest =
  { kind: 'whole' } | { kind: 'range'; range: ResolvedRange } | { kind: 'unsatisfiable' };

const WHOLE: RangeRequest = { kind: 'whole' };

export function resolveRange(header: string | null | undefined, size: number): RangeRequest {
  if (header === null || header === undefined) return WHOLE;
  const match = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!match) return WHOLE;
  const specs = match[1]!.split(',').map((spec) => spec.trim());
  if (specs.length !== 1) return WHOLE;
  const spec = /^(\d*)-(\d*)$/.exec(specs[0]!);
  if (!spec || (spec[1] === '' && spec[2] === '')) return WHOLE;
  const [first, last] = [spec[1]!, spec[2]!];
  if (first === '') {
    // The last n bytes; "-0" asks for nothing, which no representation can satisfy.
    const suffix = Number(last);
    if (!Number.isSafeInteger(suffix)) return WHOLE;
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', range: { start: Math.max(0, size - suffix), end: size - 1 } };
  }
  const start = Number(first);
  const end = last === '' ? Infinity : Number(last);
  if (!Number.isSafeInteger(start) || (last !== '' && !Number.isSafeInteger(end))) return WHOLE;
  // last < first makes the range invalid, and an invalid Range header is ignored.
  if (end < start) return WHOLE;
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'range', range: { start, end: Math.min(end, size - 1) } };
}

export function contentRange(range: ResolvedRange, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`;
}
