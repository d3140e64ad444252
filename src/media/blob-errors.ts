/**
 * Failures of Blob Storage as the blob store sees them; what a caller sees for each is decided at one
 * edge (src/http/error-edge.ts). `status` is Blob Storage's answer (0 when it could not be reached).
 */
export type BlobStoreErrorCode =
  'BLOB_EXISTS' | 'BLOB_NOT_FOUND' | 'BLOB_AUTH' | 'BLOB_UNREACHABLE' | 'BLOB_UNAVAILABLE';

export class BlobStoreError extends Error {
  readonly code: BlobStoreErrorCode;
  readonly status: number;

  constructor(code: BlobStoreErrorCode, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BlobStoreError';
    this.code = code;
    this.status = status;
  }
}

/** Blob Storage's answer (or a failure to reach it) as the store's own error. */
export function blobStoreError(status: number, what: string, cause: unknown): BlobStoreError {
  if (status === 409 || status === 412)
    return new BlobStoreError('BLOB_EXISTS', status, `${what}: the blob exists already.`, { cause });
  if (status === 404)
    return new BlobStoreError('BLOB_NOT_FOUND', status, `${what}: no such blob.`, { cause });
  if (status === 401 || status === 403)
    return new BlobStoreError('BLOB_AUTH', status, `${what}: Blob Storage refused the credentials.`, {
      cause,
    });
  if (status === 0)
    return new BlobStoreError('BLOB_UNREACHABLE', status, `${what}: Blob Storage could not be reached.`, {
      cause,
    });
  return new BlobStoreError('BLOB_UNAVAILABLE', status, `${what}: Blob Storage answered ${status}.`, {
    cause,
  });
}
