/**
 * Media types a browser may show inline from the bridge's origin: they render as images, sound, video,
 * plain text or a PDF, and never run script there. Everything else (HTML, SVG, XHTML and XML, scripts,
 * anything unknown) is only ever sent as an attachment download, so a stored file cannot run script
 * on the bridge's origin, whatever type it was stored with. `X-Content-Type-Options: nosniff` keeps
 * browsers from reading one of these as something else.
 */
const INLINE_TYPES = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'image/avif',
  'image/bmp',
  'image/heic',
  'image/heif',
  'image/tiff',
  'text/plain',
  'application/pdf',
]);
const INLINE_FAMILIES = ['audio/', 'video/'];

export function mayShowInline(mediaType: string): boolean {
  const type = mediaType.toLowerCase();
  return INLINE_TYPES.has(type) || INLINE_FAMILIES.some((family) => type.startsWith(family));
}

/**
 * A Content-Disposition value (RFC 6266): `attachment` or `inline`, the file name as a quoted ASCII
 * `filename` and, when that had to lose characters, the exact name as RFC 8187 `filename*=UTF-8''...`.
 */
export function contentDisposition(type: 'inline' | 'attachment', filename: string): string {
  const fallback = asciiFallback(filename);
  const exact = fallback === filename ? '' : `; filename*=UTF-8''${encodeRfc8187(filename)}`;
  return `${type}; filename="${fallback}"${exact}`;
}

/** Printable ASCII without `"`, `\` and `%` (which some clients decode); anything else becomes `_`. */
function asciiFallback(filename: string): string {
  return [...filename].map((ch) => (/^[\x20-\x7e]$/.test(ch) && !/["\\%]/.test(ch) ? ch : '_')).join('');
}

/** RFC 8187 value-chars: attr-char as it is, every other byte of the UTF-8 encoding as %XX. */
function encodeRfc8187(value: string): string {
  return [...Buffer.from(value, 'utf8')]
    .map((byte) => {
      const ch = String.fromCharCode(byte);
      return /^[A-Za-z0-9!#$&+\-.^_`|~]$/.test(ch)
        ? ch
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}
