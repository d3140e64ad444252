import type { BlobClient, BlobServiceClient, UserDelegationKey } from '@azure/storage-blob';
import type { DownloadUrlOptions } from './store.js';

/**
 * A SAS starts this long before it is made, so that a storage service whose clock runs a little
 * ahead of this host's still accepts it at once.
 */
const CLOCK_SKEW_MS = 60_000;
/** A user delegation key is asked for this long at least (it is valid up to 7 days). */
const DELEGATION_KEY_MS = 60 * 60_000;
const MAX_DELEGATION_KEY_MS = 7 * 24 * 60 * 60_000;

/**
 * Signs read-only SAS URLs for one blob each, for redirected downloads. With a connection string that
 * holds the account key: a service SAS signed with it. With the app's managed identity: a user
 * delegation SAS, signed with a user delegation key the identity asks Blob Storage for (cached, and
 * asked again before it runs out); the identity needs `generateUserDelegationKey`, which the Storage
 * Blob Data Contributor role includes. Either way the SAS allows `r` (read) on that blob only, from a
 * minute ago until the TTL is over, over HTTPS only unless the account itself is plain HTTP (Azurite),
 * and makes the service answer with the bridge's Content-Type and Content-Disposition.
 */
export class DownloadSigner {
  readonly #service: BlobServiceClient;
  readonly #delegated: boolean;
  #key: { key: UserDelegationKey; expiresAt: number } | undefined;

  constructor(service: BlobServiceClient, delegated: boolean) {
    this.#service = service;
    this.#delegated = delegated;
  }

  async url(blob: BlobClient, options: DownloadUrlOptions): Promise<string> {
    const sdk = await import('@azure/storage-blob');
    const now = Date.now();
    const expiresOn = new Date(now + options.ttlSeconds * 1000);
    const sas = {
      permissions: sdk.BlobSASPermissions.parse('r'),
      startsOn: new Date(now - CLOCK_SKEW_MS),
      expiresOn,
      protocol: blob.url.startsWith('https:') ? sdk.SASProtocol.Https : sdk.SASProtocol.HttpsAndHttp,
      contentType: options.contentType,
      contentDisposition: options.contentDisposition,
    };
    if (!this.#delegated) return blob.generateSasUrl(sas);
    return blob.generateUserDelegationSasUrl(sas, await this.#delegationKey(now, expiresOn.getTime()));
  }

  /** A user delegation key valid from before `now` until after `until`. */
  async #delegationKey(now: number, until: number): Promise<UserDelegationKey> {
    if (this.#key && this.#key.expiresAt > until) return this.#key.key;
    const expiresAt = Math.min(
      now + MAX_DELEGATION_KEY_MS,
      Math.max(until, now + DELEGATION_KEY_MS) + CLOCK_SKEW_MS,
    );
    const key = await this.#service.getUserDelegationKey(new Date(now - CLOCK_SKEW_MS), new Date(expiresAt));
    this.#key = { key, expiresAt };
    return key;
  }
}
