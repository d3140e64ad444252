import { describeError, type Logger } from '../../log.js';
import type { Settings } from '../../settings.js';
import { isRestError, uploadStore } from './storage.js';

/** The timer-triggered function that removes expired uploads, and when it runs (NCRONTAB, UTC). */
export const EXPIRY_FUNCTION = 'expireUploads';
export const EXPIRY_SCHEDULE = '0 */10 * * * *';

/**
 * Removes every upload past its expiry: the staged bytes (uncommitted blocks, or a committed blob
 * that is still the upload's own), then the state. A lock still held on an expired upload is broken
 * first: no request may write to it any more. Completed uploads lose only their state: their bytes are
 * an attachment's now (blob mode) or gone already (managed media). Returns how many went.
 */
export async function expireUploads(settings: Settings, log: Logger, now = Date.now()): Promise<number> {
  const store = uploadStore(settings);
  let removed = 0;
  for await (const { id, expiresAt } of store.list()) {
    if (expiresAt > now) continue;
    try {
      const stored = await store.read(id);
      // Written again since it was listed (a PATCH moved its expiry on): not expired after all.
      if (stored && stored.info.expiresAt > now) continue;
      const blob = await store.infoBlob(id);
      await blob
        .getBlobLeaseClient()
        .breakLease(0)
        .catch((err: unknown) => {
          if (!(isRestError(err) && (err.statusCode === 409 || err.statusCode === 404))) throw err;
        });
      // Only what is still the upload's own: a completed blob-mode upload's blob is an attachment's now.
      if (stored) await store.removeData(stored.info);
      await store.remove(id);
      removed += 1;
      log.info('expired upload removed', { upload: id, complete: stored?.info.completed !== undefined });
    } catch (err) {
      // The next run tries again.
      log.warn('an expired upload could not be removed yet', { upload: id, ...describeError(err) });
    }
  }
  return removed;
}
