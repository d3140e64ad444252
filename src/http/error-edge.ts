import { CosmosError } from '../cosmos/errors.js';
import { BlobStoreError } from '../media/blob-errors.js';
import { SettingsError } from '../settings-error.js';
import { BridgeError, UpstreamStatusError, isCallerError, type CallerError } from './errors.js';

/**
 * The one place where the layers' own errors become what a caller sees. Layers raise errors with
 * their own codes and causes (CosmosError, BlobStoreError, SettingsError); routes raise caller errors
 * directly. Anything else is unexpected: undefined here, a 500 at the edge, logged there.
 */
export function toCallerError(err: unknown): CallerError | undefined {
  if (isCallerError(err)) return err;
  if (err instanceof CosmosError) {
    return err.code === 'COSMOS_TIMEOUT'
      ? new BridgeError('UpstreamTimeout', 'Cosmos DB did not answer in time.')
      : new BridgeError('UpstreamUnreachable', 'Cosmos DB could not be reached or dropped the connection.');
  }
  if (err instanceof BlobStoreError) {
    switch (err.code) {
      case 'BLOB_EXISTS':
        return new UpstreamStatusError(409, 'Conflict', 'A blob for this attachment exists already.');
      case 'BLOB_AUTH':
        return new BridgeError(
          'UpstreamAuthFailed',
          "Blob Storage refused the bridge's credentials; check the blob settings.",
        );
      case 'BLOB_UNREACHABLE':
        return new BridgeError('UpstreamUnreachable', 'Blob Storage could not be reached.');
      case 'BLOB_NOT_FOUND':
        return new BridgeError('NotFound', 'The media is not in Blob Storage.');
      default:
        return new BridgeError('UpstreamUnavailable', `Blob Storage answered ${err.status}; retry later.`, {
          'retry-after': '1',
        });
    }
  }
  if (err instanceof SettingsError) {
    return new BridgeError('ConfigurationError', `The bridge is misconfigured: ${err.message}`);
  }
  return undefined;
}
