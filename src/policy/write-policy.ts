import type { Caller } from '../auth/caller.js';
import type { PartitionKey } from '../cosmos/partition-key.js';
import { BridgeError } from '../http/errors.js';
import type { Settings } from '../settings.js';
import { contentTypeAllowed } from './content-types.js';

/** What one authenticated caller may write; every check runs before anything is sent upstream. */
export interface WritePolicy {
  /**
   * The partition key a write uses. With AUTH_PARTITION_CLAIM, it must be the caller's claim value
   * (403 otherwise), and the claim value is used when the caller names none.
   */
  partitionKey(requested: PartitionKey | undefined): PartitionKey | undefined;
  /** Refuses (415) an attachment content type outside ALLOWED_CONTENT_TYPES. */
  contentType(contentType: string, subject: string): void;
}

export function writePolicy(settings: Settings, caller: Caller | undefined): WritePolicy {
  const claimName = settings.auth.partitionClaim;
  return {
    partitionKey(requested) {
      if (claimName === undefined || caller === undefined) return requested;
      const value = caller.claim(claimName);
      if (value === undefined) {
        throw new BridgeError('Forbidden', `The caller has no single "${claimName}" claim to write under.`);
      }
      if (requested === undefined) return [value];
      if (requested.length !== 1 || requested[0] !== value) {
        throw new BridgeError(
          'Forbidden',
          `The partition key must be the caller's own "${claimName}" claim.`,
        );
      }
      return requested;
    },
    contentType(contentType, subject) {
      if (!contentTypeAllowed(settings.limits.allowedContentTypes, contentType)) {
        throw new BridgeError(
          'UnsupportedMediaType',
          `${subject} has content type "${contentType.split(';', 1)[0]!.trim()}", which ALLOWED_CONTENT_TYPES does not allow.`,
        );
      }
    },
  };
}
