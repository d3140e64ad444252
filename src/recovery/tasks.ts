import type { UploadRecord } from '../attachments/record.js';

/**
 * Clean-up work that must outlive the request that found it: it goes to a durable queue and is done
 * by the queue-triggered function on whichever instance takes it. Plain JSON, no secrets.
 * - `settle`: a create whose outcome is unknown; look (again) for the attachment, remove it if it is
 *   provably the record's own. `look` counts the looks so far.
 * - `undo`: a create that succeeded but whose request failed; delete it while it is at `etag`.
 * - `restore`: an attachment this upload took over (a retry finding its own bytes already stored) but
 *   whose request failed: put back as it was (`previous`, its user properties), while it is at `etag`.
 * - `remove-media`: the bytes an upload stored outside Cosmos DB (its blob), now referenced by nothing.
 * - `settle-replace`: new media (`record`'s blob) meant to replace the attachment at version `etag`,
 *   with an unknown outcome: if the attachment now points at it, the replaced version's blob
 *   (`previous`) goes; once it cannot come to point at it, the new blob goes. `look` counts the looks.
 * - `settle-delete`: a delete of the attachment at version `etag`, with an unknown outcome: once the
 *   attachment is gone, the blob its upload wrote (`record`) goes; while it is there it stays.
 */
export type CleanupTask = (
  | { kind: 'settle'; record: UploadRecord; look: number }
  | { kind: 'undo'; record: UploadRecord; etag: string }
  | { kind: 'restore'; record: UploadRecord; etag: string; previous: Record<string, unknown> }
  | { kind: 'remove-media'; record: UploadRecord }
  | {
      kind: 'settle-replace';
      record: UploadRecord;
      previous: UploadRecord | undefined;
      etag: string;
      look: number;
    }
  | { kind: 'settle-delete'; record: UploadRecord; etag: string; look: number }
) & {
  /** Failed attempts so far: each one puts the task back on the queue a while later (retryDelayMs). */
  failures?: number;
};

/** Failed attempts after which a task is given up: it goes to the poison queue, with an error log line. */
export const MAX_TASK_FAILURES = 8;

/** How long a task waits after its `failures`-th failure: 5 s doubling, at most 10 minutes (about 40 minutes in all). */
export function retryDelayMs(failures: number): number {
  return Math.min(5_000 * 2 ** (failures - 1), 600_000);
}

/** A queue message as a task; throws on anything else (such a message is dropped, with an error log). */
export function parseTask(message: unknown): CleanupTask {
  const value: unknown = typeof message === 'string' ? JSON.parse(message) : message;
  const task = value as Partial<CleanupTask> | null;
  const record = task?.record as Partial<UploadRecord> | undefined;
  const validRecord =
    typeof record === 'object' &&
    record !== null &&
    typeof record.id === 'string' &&
    typeof record.uploadId === 'string' &&
    typeof record.address?.db === 'string' &&
    typeof record.address.coll === 'string' &&
    typeof record.address.doc === 'string';
  if (!validRecord) throw new Error('not a clean-up task: no valid record');
  switch (task?.kind) {
    case 'settle':
      if (typeof task.look === 'number') return task as CleanupTask;
      break;
    case 'undo':
      if (typeof task.etag === 'string') return task as CleanupTask;
      break;
    case 'restore':
      if (typeof task.etag === 'string' && typeof task.previous === 'object' && task.previous !== null)
        return task as CleanupTask;
      break;
    case 'remove-media':
      return task as CleanupTask;
    case 'settle-replace':
    case 'settle-delete':
      if (typeof task.etag === 'string' && typeof task.look === 'number') return task as CleanupTask;
      break;
  }
  throw new Error('not a clean-up task: unknown kind or fields');
}

/** The ids a log line needs to find a task's attachment again. */
export function taskIds(task: CleanupTask): Record<string, unknown> {
  const { address, id, uploadId, blob } = task.record;
  return { task: task.kind, ...address, attachment: id, uploadId, ...(blob ? { blob } : {}) };
}
