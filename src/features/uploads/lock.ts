import { randomUUID } from 'node:crypto';
import type { BlobLeaseClient } from '@azure/storage-blob';
import { BridgeError } from '../../http/errors.js';
import type { Logger } from '../../log.js';
import { isRestError, storageError, type UploadStore } from './storage.js';

/**
 * How long a lock lasts without renewal (Blob Storage allows 15 to 60 s): an instance that crashed
 * mid-PATCH holds up its upload for at most this long.
 */
export const LEASE_SECONDS = 30;
/** Renewed this often while a request holds it: two renewals may fail before it lapses. */
const RENEW_MS = (LEASE_SECONDS * 1000) / 3;

/**
 * One request's hold on an upload: a lease on its info blob, which every write of the state must
 * present. It expires by itself, so an instance that crashed never blocks an upload for long; while a
 * request holds it, it is renewed. If renewal fails (the lease was broken or lapsed), `lost` fires and
 * the request must stop: its later writes would be refused anyway.
 */
export class UploadLock {
  readonly #lease: BlobLeaseClient;
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;
  #released = false;

  private constructor(lease: BlobLeaseClient, log: Logger) {
    this.#lease = lease;
    this.#timer = setInterval(() => {
      this.#lease.renewLease().catch((err: unknown) => {
        if (this.#released) return;
        log.warn('an upload lock could not be renewed; the request stops', {
          status: isRestError(err) ? err.statusCode : undefined,
        });
        this.#controller.abort(
          locked('The upload lock was lost; ask for the offset and send the rest again.'),
        );
      });
    }, RENEW_MS).unref();
  }

  /** Takes the upload's lock, or refuses with 423 when another request holds it. */
  static async acquire(store: UploadStore, uploadId: string, log: Logger): Promise<UploadLock> {
    const blob = await store.infoBlob(uploadId);
    const lease = blob.getBlobLeaseClient(randomUUID());
    try {
      await lease.acquireLease(LEASE_SECONDS);
    } catch (err) {
      if (isRestError(err) && err.statusCode === 409) {
        throw locked('Another request is writing to this upload; try again when it is done.');
      }
      if (isRestError(err) && err.statusCode === 404) throw new BridgeError('NotFound', 'No such upload.');
      throw storageError(err, 'Locking the upload');
    }
    return new UploadLock(lease, log);
  }

  get leaseId(): string {
    return this.#lease.leaseId;
  }

  /** Aborted when the lock is lost. */
  get lost(): AbortSignal {
    return this.#controller.signal;
  }

  /** Lets go of the lock (best effort: if this fails, it lapses by itself). */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    clearInterval(this.#timer);
    try {
      await this.#lease.releaseLease();
    } catch {
      // Gone with its blob (termination), broken, or lapsed: nothing to release.
    }
  }
}

function locked(message: string): BridgeError {
  return new BridgeError('Locked', message);
}
