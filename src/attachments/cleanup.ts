import { setTimeout as delay } from 'node:timers/promises';
import type { CosmosClient } from '../cosmos/client.js';
import { describeError, type Logger } from '../log.js';
import type { MediaStore } from '../media/store.js';
import type { CleanupQueue } from '../recovery/queue.js';
import { taskIds, type CleanupTask } from '../recovery/tasks.js';
import { deleteIfUnchanged, findAttachment, LookupFailed } from './lookups.js';
import { ownershipByMark, type FoundAttachment, type Ownership, type UploadRecord } from './record.js';

/** What clean-up needs, in a request or in the queue-triggered function. */
export interface CleanupContext {
  cosmos: CosmosClient;
  media: MediaStore;
  queue: CleanupQueue;
  log: Logger;
  /** UPSTREAM_TIMEOUT_MS: paces the looks after an unknown outcome. */
  timeoutMs: number;
}

/**
 * Looks after a create whose outcome is unknown: at once, then after one and two more upstream
 * timeouts, because a gateway that took a request in may store it after its client stopped waiting.
 */
export function lookDelays(timeoutMs: number): number[] {
  return [0, timeoutMs, 2 * timeoutMs];
}

/**
 * One look at a create whose outcome is unknown. If the attachment is there and provably the record's
 * own, it is deleted (only at the version proved, so an attachment anyone changed meanwhile stays),
 * then its media. Anything else stays. The next look, if any, goes to the queue. Throws when Cosmos DB
 * cannot be asked now (the caller looks again later).
 */
export async function settle(ctx: CleanupContext, record: UploadRecord, look: number): Promise<void> {
  const delays = lookDelays(ctx.timeoutMs);
  const found = await findAttachment(ctx.cosmos, record);
  const verdict = found ? await proveOwnership(ctx, found, record) : undefined;
  if (found && verdict === 'own') {
    const result = await deleteIfUnchanged(ctx.cosmos, record, found.etag);
    // Changed since it was proved: look at the new version at once, without counting a look.
    if (result === 'changed') return ctx.queue.send({ kind: 'settle', record, look }, 0);
    await removeMedia(ctx, record);
    ctx.log.warn('a create whose request had failed was found stored, and undone', {
      ...taskIds({ kind: 'settle', record, look }),
      look,
      settled: 'undone',
    });
    return;
  }
  if (verdict === 'undecided') {
    // Unmarked managed media not yet past its grace period: whoever made it may still mark it.
    return ctx.queue.send({ kind: 'settle', record, look }, ctx.timeoutMs);
  }
  if (look + 1 < delays.length) {
    return ctx.queue.send({ kind: 'settle', record, look: look + 1 }, delays[look + 1]!);
  }
  // The last look: nothing of this upload's is in Cosmos DB, and what it stored elsewhere is unreferenced.
  await removeMedia(ctx, record);
  ctx.log.info(
    found ? 'an attachment of the same id is not this upload’s: kept' : 'the create was never stored',
    {
      ...taskIds({ kind: 'settle', record, look }),
      look,
      settled: found ? 'kept' : 'absent',
    },
  );
}

/**
 * One look at a replace whose outcome is unknown (new media for the attachment at version `etag`).
 * The attachment marked with the new upload id took it: the replaced version's blob goes. While the
 * attachment is still at `etag` the replace may yet be applied: look again later, up to the same
 * number of looks as a create. Otherwise (it moved on without it, or it is gone, or the last look
 * found it unchanged) nothing can come to point at the new blob: it goes.
 */
export async function settleReplace(
  ctx: CleanupContext,
  task: Extract<CleanupTask, { kind: 'settle-replace' }>,
): Promise<void> {
  const { record, previous, etag, look } = task;
  const delays = lookDelays(ctx.timeoutMs);
  const found = await findAttachment(ctx.cosmos, record);
  if (found && ownershipByMark(found.resource, record.uploadId) === 'own') {
    if (previous) await removeMedia(ctx, previous);
    ctx.log.info('a replace whose request had failed was found applied', {
      ...taskIds(task),
      look,
      settled: 'replaced',
    });
    return;
  }
  if (found?.etag === etag && look + 1 < delays.length) {
    return ctx.queue.send({ ...task, look: look + 1 }, delays[look + 1]!);
  }
  await removeMedia(ctx, record);
  ctx.log.info('a replace whose request had failed was never applied', {
    ...taskIds(task),
    look,
    settled: 'absent',
  });
}

/**
 * One look after a delete whose outcome is unknown: the attachment gone, its blob goes; still at the
 * version the delete named, look again later (the delete may yet be applied); changed, or still there
 * at the last look, the blob stays (the attachment points at it).
 */
export async function settleDelete(
  ctx: CleanupContext,
  task: Extract<CleanupTask, { kind: 'settle-delete' }>,
): Promise<void> {
  const { record, etag, look } = task;
  const delays = lookDelays(ctx.timeoutMs);
  const found = await findAttachment(ctx.cosmos, record);
  if (!found) {
    await removeMedia(ctx, record);
    ctx.log.info('a delete whose request had failed was found applied', {
      ...taskIds(task),
      look,
      settled: 'deleted',
    });
    return;
  }
  if (found.etag === etag && look + 1 < delays.length) {
    return ctx.queue.send({ ...task, look: look + 1 }, delays[look + 1]!);
  }
  ctx.log.info('a delete whose request had failed was not applied', {
    ...taskIds(task),
    look,
    settled: 'kept',
  });
}

/**
 * Deletes an attachment this upload created (a 201 said so) for a request that failed, while it is
 * still at `etag`. If it changed meanwhile it is deleted only if it is still provably the upload's own.
 */
export async function undo(ctx: CleanupContext, record: UploadRecord, etag: string): Promise<void> {
  let version = etag;
  for (;;) {
    const result = await deleteIfUnchanged(ctx.cosmos, record, version);
    if (result !== 'changed') break;
    const found = await findAttachment(ctx.cosmos, record);
    if (!found) break;
    if ((await proveOwnership(ctx, found, record)) !== 'own') {
      ctx.log.warn(
        'rollback: kept an attachment that changed after this upload made it',
        taskIds({ kind: 'undo', record, etag }),
      );
      return;
    }
    version = found.etag;
  }
  await removeMedia(ctx, record);
}

/**
 * Puts an attachment this upload took over back as it was found (its earlier owner's mark, or none),
 * while it is still at the version this upload made of it; then removes this upload's own media.
 */
export async function restore(
  ctx: CleanupContext,
  record: UploadRecord,
  etag: string,
  previous: Record<string, unknown>,
): Promise<void> {
  let version = etag;
  for (;;) {
    const reply = await ctx.cosmos.replaceAttachment(record.address, record.id, JSON.stringify(previous), {
      partitionKey: record.partitionKey,
      ifMatch: version,
    });
    if (reply.status === 200 || reply.status === 404) break;
    if (reply.status !== 412) throw new LookupFailed('restore', reply.status);
    const found = await findAttachment(ctx.cosmos, record);
    if (!found || ownershipByMark(found.resource, record.uploadId) !== 'own') return;
    version = found.etag;
  }
  await removeMedia(ctx, record);
}

export async function removeMedia(ctx: CleanupContext, record: UploadRecord): Promise<void> {
  if (record.media === 'blob') await ctx.media.remove(record);
}

/** Metadata attachments are proved by their mark; media by their store's rule. */
function proveOwnership(
  ctx: CleanupContext,
  found: FoundAttachment,
  record: UploadRecord,
): Promise<Ownership> {
  if (record.media === 'none')
    return Promise.resolve(ownershipByMark(found.resource, record.uploadId) ?? 'other');
  return ctx.media.prove(found, record);
}

/** Runs one clean-up task, as the queue-triggered function does. Throws when it must be tried again. */
export async function runTask(ctx: CleanupContext, task: CleanupTask): Promise<void> {
  switch (task.kind) {
    case 'settle':
      return settle(ctx, task.record, task.look);
    case 'undo':
      return undo(ctx, task.record, task.etag);
    case 'restore':
      return restore(ctx, task.record, task.etag, task.previous);
    case 'remove-media':
      return removeMedia(ctx, task.record);
    case 'settle-replace':
      return settleReplace(ctx, task);
    case 'settle-delete':
      return settleDelete(ctx, task);
  }
}

/**
 * Hands a task to the durable queue. If even that fails, all that is left is an error line with the
 * ids, for an operator to act on.
 */
export async function enqueue(ctx: CleanupContext, task: CleanupTask, delayMs: number): Promise<void> {
  try {
    await ctx.queue.send(task, delayMs);
  } catch (err) {
    ctx.log.error('clean-up could not be queued; it is left undone', {
      ...taskIds(task),
      ...describeError(err),
    });
  }
}

/**
 * Does a task now, within the request, retrying what fails for up to `budgetMs`, and hands what is
 * left to the queue. True when it was all done here.
 */
export async function doNowOrQueue(
  ctx: CleanupContext,
  task: CleanupTask,
  budgetMs: number,
): Promise<boolean> {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 0; ; attempt++) {
    try {
      await runTask(ctx, task);
      return true;
    } catch (err) {
      const waitMs = 100 * 3 ** attempt;
      if (Date.now() + waitMs > deadline) {
        ctx.log.warn('clean-up failed for now; queued to try again', {
          ...taskIds(task),
          ...describeError(err),
        });
        await enqueue(ctx, task, 1_000);
        return false;
      }
      await delay(waitMs);
    }
  }
}
