import { BridgeError } from '../../http/errors.js';
import type { UploadSettings } from '../../settings.js';

/** The tus protocol version this route speaks (tus 1.0.0, https://tus.io/protocols/resumable-upload). */
export const TUS_VERSION = '1.0.0';
export const EXTENSIONS = [
  'creation',
  'creation-with-upload',
  'creation-defer-length',
  'termination',
  'checksum',
  'expiration',
] as const;
/** `sha1` because the checksum extension requires it; Node's own names for all three. */
export const CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'md5'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];
/** The media type of every PATCH body (and of a creation request that carries bytes). */
export const CHUNK_TYPE = 'application/offset+octet-stream';

/**
 * Headers a browser client must be able to read: the platform's CORS (or the local host's) allows
 * origins and methods but exposes no headers of its own, so every answer names them.
 */
const EXPOSED = [
  'Location',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Defer-Length',
  'Upload-Metadata',
  'Upload-Expires',
  'Tus-Resumable',
  'Tus-Version',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Checksum-Algorithm',
  'Content-Location',
  'X-Attachment',
  'X-Request-Id',
].join(', ');

/** Headers on every tus answer, errors included. */
export function tusHeaders(): Record<string, string> {
  return { 'tus-resumable': TUS_VERSION, 'access-control-expose-headers': EXPOSED };
}

/** What an OPTIONS request learns: version, extensions, the size limit and checksum algorithms. */
export function optionsResponse(settings: UploadSettings): Response {
  return new Response(null, {
    status: 204,
    headers: {
      ...tusHeaders(),
      'tus-version': TUS_VERSION,
      'tus-extension': EXTENSIONS.join(','),
      'tus-max-size': String(settings.maxUploadBytes),
      'tus-checksum-algorithm': CHECKSUM_ALGORITHMS.join(','),
    },
  });
}

/** Every request but OPTIONS must speak this version; the spec says 412 with Tus-Version otherwise. */
export function requireTusVersion(request: Request): void {
  if (request.headers.get('tus-resumable') !== TUS_VERSION) {
    throw new BridgeError(
      'PreconditionFailed',
      `Send Tus-Resumable: ${TUS_VERSION}; it is the version spoken here.`,
      {
        'tus-version': TUS_VERSION,
      },
    );
  }
}

/** The method a request means: X-HTTP-Method-Override, for clients that cannot send PATCH or DELETE. */
export function effectiveMethod(request: Request): string {
  const override = request.headers.get('x-http-method-override')?.trim().toUpperCase();
  return override && request.method === 'POST' ? override : request.method;
}

/** A non-negative integer header (Upload-Offset, Upload-Length), or undefined when absent. */
export function byteCount(request: Request, name: string): number | undefined {
  const raw = request.headers.get(name);
  if (raw === null) return undefined;
  const value = /^\d{1,16}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (!Number.isSafeInteger(value))
    throw new BridgeError('InvalidHeader', `${name} must be a non-negative integer.`);
  return value;
}

/** Upload-Metadata: comma-separated `key base64value` pairs (the value may be left out). */
export function parseUploadMetadata(header: string | null): Map<string, Buffer> {
  const pairs = new Map<string, Buffer>();
  if (header === null || header.trim() === '') return pairs;
  if (header.length > 16 * 1024) throw new BridgeError('InvalidHeader', 'Upload-Metadata is too long.');
  for (const item of header.split(',')) {
    const match = /^\s*([^\s,]+)(?: ([A-Za-z0-9+/]*={0,2}))?\s*$/.exec(item);
    if (!match)
      throw new BridgeError('InvalidHeader', 'Upload-Metadata must be comma-separated "key base64" pairs.');
    const key = match[1]!;
    const value = match[2] ?? '';
    if (value.length % 4 !== 0)
      throw new BridgeError('InvalidHeader', `Upload-Metadata "${safe(key)}" is not base64.`);
    if (pairs.has(key)) throw new BridgeError('InvalidHeader', `Upload-Metadata names "${safe(key)}" twice.`);
    pairs.set(key, Buffer.from(value, 'base64'));
  }
  return pairs;
}

/** A metadata value as UTF-8 text; malformed UTF-8 is refused rather than mangled. */
export function metadataText(pairs: Map<string, Buffer>, key: string): string | undefined {
  const value = pairs.get(key);
  if (value === undefined) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(value);
  } catch {
    throw new BridgeError('InvalidHeader', `Upload-Metadata "${key}" is not UTF-8 text.`);
  }
}

/** A flag in the metadata: present with no value, `true` or `1`. */
export function metadataFlag(pairs: Map<string, Buffer>, key: string): boolean {
  const text = metadataText(pairs, key);
  if (text === undefined) return false;
  if (text === '' || text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw new BridgeError('InvalidHeader', `Upload-Metadata "${key}" must be empty, true or false.`);
}

export interface Checksum {
  algorithm: ChecksumAlgorithm;
  digest: Buffer;
}

/** Upload-Checksum: `algorithm base64digest`; an algorithm not offered is a 400, as the spec says. */
export function parseChecksum(header: string | null): Checksum | undefined {
  if (header === null) return undefined;
  const match = /^\s*([a-z0-9-]+) ([A-Za-z0-9+/]+={0,2})\s*$/.exec(header);
  if (!match) throw new BridgeError('InvalidHeader', 'Upload-Checksum must be "algorithm base64digest".');
  const algorithm = match[1] as ChecksumAlgorithm;
  if (!CHECKSUM_ALGORITHMS.includes(algorithm)) {
    throw new BridgeError(
      'BadRequest',
      `Checksum algorithm "${match[1]}" is not supported (${CHECKSUM_ALGORITHMS.join(', ')}).`,
    );
  }
  return { algorithm, digest: Buffer.from(match[2]!, 'base64') };
}

/** RFC 7231 date, as Upload-Expires needs. */
export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/** A caller's key name, shown in a message: printable ASCII, shortened. */
function safe(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
}
