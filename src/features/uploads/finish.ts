import { newUploadId } from '../../attachments/record.js';
import { toCallerError } from '../../http/error-edge.js';
import { BridgeError, type CallerError } from '../../http/errors.js';
import { describeError } from '../../log.js';
import { MAX_TASK_FAILURES, type CompleteUploadTask } from '../../recovery/tasks.js';
import type { RequestContext } from '../context.js';
import type { StagedBlocks } from './chunk.js';
import { complete, StagedBytesLost } from './completion.js';
import { hasherAt } from './hashing.js';
import { UploadLock } from './lock.js';
import { withBlocks, withoutLastBlock, type Failure, type UploadInfo } from './state.js';
import { StateChanged, uploadStore, type StoredInfo, type UploadStore } from './storage.js';

/**
 * How completing an upload survives dropped connections and recycled instances.
 *
 * When a PATCH has staged the last byte, a durable task is queued first (the `cleanup` queue, kind
 * `complete-upload`, visible after one lock length), then one state write records every block and
 * `completing`. From then on HEAD reports the whole length (tus clients are done and stop sending),
 * PATCH answers without taking the lock, GET answers 202. The request then makes the attachment
 * itself, under the upload's lock, and answers with it if that takes at most
 * UPLOAD_COMPLETION_WAIT_SECONDS; else it answers that the attachment is being made and goes on. If
 * the request cannot finish (the caller left: it goes on regardless; the instance died: its lock
 * lapses; a service failed for now), the task takes the lock and finishes it, on whatever instance
 * takes the message, or finds it finished. A completion that fails for good takes the final block
 * back (the upload is one block short and completes when it is sent again) or, when the staged bytes
 * are gone, removes what is left and records why; GET says which.
 */

/** How a completion run ended. */
export type Finished =
  | { kind: 'complete'; info: UploadInfo }
  /** Still completing: failed for now, or another runner has the upload; the queued task goes on. */
  | { kind: 'pending'; error: unknown }
  /** Failed for good: the caller's error, and whether that is recorded in the state yet. */
  | { kind: 'failed'; error: CallerError; recorded: boolean };

/** When the queued task first looks: by then the request has finished, or its lock has lapsed. */
export function taskDelayMs(context: RequestContext): number {
  return context.settings.uploads.lockSeconds * 1000;
}

/** Times a task comes back to an upload it finds locked before it leaves it (an hour at 30 s locks). */
const MAX_WAITS = 240;

/**
 * Queues the task, then records the last blocks and `completing` in one write. If the task cannot be
 * queued, only the blocks before the final one are recorded and the caller hears 503: it sends the
 * final block again.
 */
export async function beginCompletion(
  current: StoredInfo,
  lock: UploadLock,
  received: {
    tag: string;
    pending: StagedBlocks;
    final: { bytes: number; hash: string | undefined } | undefined;
  },
  context: RequestContext,
  store: UploadStore,
): Promise<StoredInfo> {
  const { info } = current;
  const { tag, pending, final } = received;
  const attempt = newUploadId();
  const expiresAt = Date.now() + context.settings.uploads.expirySeconds * 1000;
  const upToFinal = withBlocks(info.segments, tag, pending.blocks, pending.bytes);
  const hashBefore = pending.blocks > 0 ? pending.hash : info.hash;
  try {
    await context.queue.send({ kind: 'complete-upload', upload: info.id, attempt }, taskDelayMs(context));
  } catch (err) {
    context.log.warn('a resumable upload could not queue its completion', {
      upload: info.id,
      ...describeError(err),
    });
    if (pending.blocks > 0) {
      const recorded = {
        ...info,
        segments: upToFinal,
        offset: info.offset + pending.bytes,
        hash: hashBefore,
      };
      await store.write({ ...recorded, expiresAt }, current.etag, lock.leaseId);
    }
    throw new BridgeError(
      'UpstreamUnavailable',
      'The upload could not be completed for now; send its last chunk again.',
      { 'retry-after': '5' },
    );
  }
  const next: UploadInfo = {
    ...info,
    segments: withBlocks(upToFinal, tag, final ? 1 : 0, final?.bytes ?? 0),
    offset: info.length!,
    hash: final ? final.hash : hashBefore,
    completing: { attempt, since: Date.now(), finalBytes: final?.bytes ?? 0, hashBefore },
    failed: undefined,
    expiresAt,
  };
  const etag = await store.write(next, current.etag, lock.leaseId);
  context.log.info('resumable upload completing', { upload: info.id, attempt, size: info.length });
  return { info: next, etag };
}

/**
 * Makes the attachment of an upload in `completing`, under `lock` (released at the end), and records
 * how that ended. `lastAttempt`: a failure for now counts as one for good (the task's last try);
 * `by`: who runs it, for the log.
 */
export async function finish(
  stored: StoredInfo,
  lock: UploadLock,
  context: RequestContext,
  store: UploadStore,
  { lastAttempt, by }: { lastAttempt: boolean; by: 'request' | 'queue' },
): Promise<Finished> {
  const { info } = stored;
  const ids = { upload: info.id, attachment: info.target.id, attempt: info.completing?.attempt, by };
  try {
    const { completed } = await complete(
      { info, etag: stored.etag, lock, hasher: await hasherAt(info) },
      context,
      store,
    );
    context.log.info('resumable upload completed', { ...ids, size: info.length });
    return { kind: 'complete', info: { ...info, completing: undefined, completed } };
  } catch (err) {
    const failure = toCallerError(err);
    if (lock.lost.aborted || err instanceof StateChanged) {
      // Another runner has the upload now (this one's lock lapsed): it finishes.
      context.log.warn('a resumable upload’s completion lost its lock; another finishes it', {
        ...ids,
        ...describeError(err),
      });
      return { kind: 'pending', error: err };
    }
    if (!lastAttempt && (failure === undefined || failsForNow(failure))) {
      context.log[failure ? 'warn' : 'error'](
        'a resumable upload’s completion failed for now; the queue tries again',
        {
          ...ids,
          ...describeError(err),
        },
      );
      return { kind: 'pending', error: err };
    }
    const error = failure ?? new BridgeError('InternalError', 'The upload could not be completed.');
    const recorded = await giveUp(stored, lock, error, err instanceof StagedBytesLost, context, store);
    return { kind: 'failed', error, recorded };
  } finally {
    await lock.release();
  }
}

/** Failures worth trying again later: the services (5xx), throttling, timeouts, a lock held elsewhere. */
function failsForNow(error: CallerError): boolean {
  return error.status >= 500 || [408, 423, 429].includes(error.status);
}

/**
 * Records a completion that failed for good: the final block is taken back, so the upload is one block
 * short and completes when it is sent again; or, when the staged bytes are gone (or the upload ended
 * on an empty PATCH, with no block to take back), what is left of them goes and only the record
 * stays. False when even that could not be written (the task tries again).
 */
async function giveUp(
  stored: StoredInfo,
  lock: UploadLock,
  error: CallerError,
  bytesLost: boolean,
  context: RequestContext,
  store: UploadStore,
): Promise<boolean> {
  const { info } = stored;
  const finalBytes = info.completing?.finalBytes ?? 0;
  const completable = !bytesLost && finalBytes > 0;
  const failed: Failure = {
    status: error.status,
    code: error.code,
    message: error.message,
    at: Date.now(),
    completable,
  };
  try {
    let next: UploadInfo;
    if (completable) {
      next = {
        ...info,
        segments: withoutLastBlock(info.segments, finalBytes),
        offset: info.offset - finalBytes,
        hash: info.completing?.hashBefore,
        completing: undefined,
        failed,
      };
    } else {
      await store.removeData(info);
      next = { ...info, segments: [], offset: 0, hash: undefined, completing: undefined, failed };
    }
    await store.write(next, stored.etag, lock.leaseId);
    context.log.warn('a resumable upload’s completion failed for good', {
      upload: info.id,
      attachment: info.target.id,
      code: error.code,
      status: error.status,
      completable,
    });
    return true;
  } catch (err) {
    context.log.warn('a failed completion could not be recorded yet; the queue tries again', {
      upload: info.id,
      ...describeError(err),
    });
    return false;
  }
}

/**
 * The queued task: finishes the completion it was queued for, unless it is finished (or was given up,
 * or another attempt began). While the upload is locked (the request is still at it, or a crashed
 * instance's lock has not lapsed) it comes back later. Throws when it must be tried again.
 */
export async function runCompletionTask(context: RequestContext, task: CompleteUploadTask): Promise<void> {
  const { settings, log } = context;
  const store = uploadStore(settings);
  const ids = { upload: task.upload, attempt: task.attempt };
  const read = await store.read(task.upload);
  if (read?.info.completing?.attempt !== task.attempt) {
    log.info('resumable upload completion: nothing left to do', {
      ...ids,
      state: read ? (read.info.completed ? 'complete' : 'not completing') : 'gone',
    });
    return;
  }
  let held: { lock: UploadLock; stored: StoredInfo };
  try {
    held = await UploadLock.acquire(store, read, settings.uploads.lockSeconds, log);
  } catch (err) {
    if (!(err instanceof BridgeError && err.code === 'Locked')) throw err;
    const waits = (task.waits ?? 0) + 1;
    if (waits > MAX_WAITS) {
      log.error('resumable upload completion: the upload stayed locked; left to its expiry', ids);
      return;
    }
    await context.queue.send({ ...task, waits }, (settings.uploads.lockSeconds * 1000) / 2);
    return;
  }
  if (held.stored.info.completing?.attempt !== task.attempt) {
    await held.lock.release();
    return;
  }
  log.info('resumable upload completion taken up from the queue', ids);
  const lastAttempt = (task.failures ?? 0) + 1 >= MAX_TASK_FAILURES;
  const result = await finish(held.stored, held.lock, context, store, { lastAttempt, by: 'queue' });
  if (result.kind === 'pending') throw result.error;
  if (result.kind === 'failed' && !result.recorded) throw result.error;
}
