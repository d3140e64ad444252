import type { Caller } from '../auth/caller.js';
import type { PartitionKey } from '../cosmos/partition-key.js';
import { BridgeError } from '../http/errors.js';
import type { Settings } from '../settings.js';
import { contentTypeAllowed, mediaTypeOf } from './content-types.js';

/**
 * What one authenticated caller may reach, for reads and writes alike; every check runs before
 * anything is sent upstream. (ALLOWED_TARGETS is checked where a route reads its document address:
 * src/features/address.ts.)
 */
export interface AccessPolicy {
  /**
   * The partition key a read or write uses. With AUTH_PARTITION_CLAIM, it must be the caller's claim
   * value (403 otherwise), and the claim value is used when the caller names none: a signed-in user
   * reaches only its own partition.
   */
  partitionKey(requested: PartitionKey | undefined): PartitionKey | undefined;
  /**
   * Refuses an attachment content type that is not one valid media type (400), or is outside
   * ALLOWED_CONTENT_TYPES (415).
   */
  contentType(contentType: string, subject: string): void;
}

export function accessPolicy(settings: Settings, caller: Caller | undefined): AccessPolicy {
  const claimName = settings.auth.partitionClaim;
  return {
    partitionKey(requested) {
      if (claimName === undefined || caller === undefined) return requested;
      const value = caller.claim(claimName);
      if (value === undefined) {
        throw new BridgeError(
          'Forbidden',
          `The caller has no single "${claimName}" claim to read or write under.`,
        );
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
      const mediaType = mediaTypeOf(contentType);
      if (mediaType === undefined) {
        throw new BridgeError(
          'InvalidContentType',
          `${subject} has a content type that is not one valid media type.`,
        );
      }
      if (!contentTypeAllowed(settings.limits.allowedContentTypes, mediaType)) {
        throw new BridgeError(
          'UnsupportedMediaType',
          `${subject} has content type "${mediaType}", which ALLOWED_CONTENT_TYPES does not allow.`,
        );
      }
    },
  };
}
