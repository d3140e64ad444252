import type { CallOptions, CosmosReply, DocumentAddress } from '../cosmos/client.js';
import { BridgeError } from '../http/errors.js';
import { describeError } from '../log.js';
import type { Measurement } from '../multipart/measure.js';
import type { RouteContext } from './attachment-writer.js';

/**
 * Cosmos DB statuses after which a create may or may not have been stored: it timed out (408) or
 * failed inside the service (5xx). 429 and 449 promise nothing was done, so they are not here.
 */
export const UNKNOWN_OUTCOME_STATUSES = new Set([408, 500, 502, 503, 504]);

/** A failure to reach or hear from the upstream: the create may have gone through. */
export function isUnknownOutcomeError(err: unknown): boolean {
  return err instanceof BridgeError && (err.code === 'UpstreamUnreachable' || err.code === 'UpstreamTimeout');
}

/** What one create sent, to recognise its attachment among others of the same id. */
export interface SentCreate {
  id: string;
  options: CallOptions;
  /** When the request began, in Cosmos DB's `_ts` units (seconds), with a second of slack. */
  startedSeconds: number;
  contentType: string;
  /** For a metadata attachment: the `media` it points at. */
  media?: string;
  /** In blob mode: the blob the attachment points at. */
  blob?: string;
  /** For a managed attachment: the size and SHA-256 of the part, if it was all taken in. */
  sentBytes?: () => Measurement | undefined;
}

/**
 * The attachment with this id, if it is this create's own. In blob mode its `media` is the blob this
 * upload alone named, which settles it. Otherwise it must be as new as the request, with the content
 * type (and media link) that was sent, and for a managed attachment hold the very bytes that were
 * sent: an older one, or one that differs, is someone else's and is never claimed or deleted.
 */
export async function findOwn(
  context: RouteContext,
  address: DocumentAddress,
  sent: SentCreate,
): Promise<CosmosReply | undefined> {
  const found = await context.cosmos.readAttachment(address, sent.id, { ...sent.options, signal: undefined });
  if (found.status === 404) return undefined;
  if (found.status !== 200) throw new Error(`Cosmos DB answered ${found.status} to the lookup`);
  const resource = JSON.parse(found.body) as { _ts?: unknown; contentType?: unknown; media?: unknown };
  if (sent.blob !== undefined) return resource.media === sent.media ? found : undefined;
  const recent =
    typeof resource._ts === 'number' &&
    resource._ts >= sent.startedSeconds &&
    typeof resource.contentType === 'string' &&
    mediaType(resource.contentType) === mediaType(sent.contentType) &&
    (sent.media === undefined || resource.media === sent.media);
  if (!recent) return undefined;
  if (sent.sentBytes === undefined) return found;
  // Two callers may upload the same file name at once: only the bytes tell which one this is.
  const bytes = sent.sentBytes();
  if (bytes === undefined || typeof resource.media !== 'string') return undefined;
  const stored = await context.cosmos.measureMedia(resource.media);
  return stored?.size === bytes.size && stored.sha256 === bytes.sha256 ? found : undefined;
}

/**
 * After a create whose outcome is unknown: undo it now if it is there. Cosmos DB may still store a
 * create after the bridge stopped waiting, so look again later (after one and three upstream
 * timeouts) and undo it then. A look that fails is logged and the next one still happens. In blob
 * mode the blob goes once the attachment is undone, or once the last look confirmed it absent: an
 * attachment never points at a deleted blob, so when in doubt the blob stays (and is logged).
 */
export async function settleUnknownOutcome(
  context: RouteContext,
  address: DocumentAddress,
  sent: SentCreate,
): Promise<void> {
  const timeoutMs = context.settings.upstream.timeoutMs;
  const looks = [0, timeoutMs, timeoutMs * 2];
  const look = async (attempt: number): Promise<void> => {
    let absent = false;
    try {
      if (await undoIfOwn(context, address, sent, attempt > 0)) return;
      absent = true;
    } catch (err) {
      context.log.error('an attachment may be left behind after an unknown outcome', {
        ...address,
        attachment: sent.id,
        ...describeError(err),
      });
    }
    const next = attempt + 1;
    if (next < looks.length) {
      context.later(() => look(next), looks[next]!);
    } else if (sent.blob) {
      if (absent) await deleteBlob(context, address, sent.blob);
      else context.log.error('blob kept: its attachment may exist', { ...address, blob: sent.blob });
    }
  };
  await look(0);
}

/** True when the attachment was found to be this create's own and was deleted (with its blob). */
async function undoIfOwn(
  context: RouteContext,
  address: DocumentAddress,
  sent: SentCreate,
  late: boolean,
): Promise<boolean> {
  if (!(await findOwn(context, address, sent))) return false;
  const reply = await context.cosmos.deleteAttachment(address, sent.id, {
    ...sent.options,
    signal: undefined,
  });
  if (reply.status !== 204 && reply.status !== 404)
    throw new Error(`Cosmos DB answered ${reply.status} to the delete`);
  if (sent.blob) await deleteBlob(context, address, sent.blob);
  if (late) {
    context.log.warn('a create stored after its request had failed was undone', {
      ...address,
      attachment: sent.id,
    });
  }
  return true;
}

export async function deleteBlob(
  context: RouteContext,
  address: DocumentAddress,
  blob: string,
): Promise<void> {
  try {
    await context.blobs?.delete(blob);
  } catch (err) {
    context.log.error('rollback: blob not deleted', { ...address, blob, ...describeError(err) });
  }
}

function mediaType(contentType: string): string {
  return contentType.split(';', 1)[0]!.trim().toLowerCase();
}
