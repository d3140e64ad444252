import { doNowOrQueue } from '../../attachments/cleanup.js';
import { UNKNOWN_OUTCOME_STATUSES } from '../../attachments/create.js';
import { storedBlobRecord } from '../../attachments/writer.js';
import { isOutcomeUnknown } from '../../cosmos/errors.js';
import { passedBackHeaders, upstreamError } from '../../http/cosmos-replies.js';
import type { RequestContext, RouteParams } from '../context.js';
import { attachmentTarget } from '../target.js';
import { currentVersion, preconditionFailed } from './current.js';

/** Looks at an attachment that keeps changing under a delete without If-Match, before giving up. */
const ATTEMPTS = 4;

/**
 * `DELETE .../attachments/{id}`: removes the attachment (If-Match honoured: 412), then, when its media
 * is a blob its own upload wrote, that blob; never a blob it did not write, never an external URL;
 * managed media goes with its attachment. The delete is always conditional on the version read, so the
 * blob removed is the one the deleted version pointed at. A blob that cannot be removed now goes to
 * the durable clean-up queue. 204.
 */
export async function deleteAttachment(
  request: Request,
  params: RouteParams,
  context: RequestContext,
): Promise<Response> {
  const target = attachmentTarget(request, params, context);
  const named = request.headers.get('if-match');
  for (let attempt = 0; ; attempt++) {
    const current = await currentVersion(request, target, context);
    const owner = { address: target.address, partitionKey: target.partitionKey };
    const blob = storedBlobRecord(
      await context.media.locate(current.resource, owner),
      current.resource,
      owner,
    );
    let reply;
    try {
      reply = await context.cosmos.deleteAttachment(target.address, target.id, {
        ...target.options,
        ifMatch: current.etag,
      });
    } catch (err) {
      // Deleted or not, nobody can tell yet: its blob goes only once it is known to be gone.
      if (isOutcomeUnknown(err) && blob) {
        await doNowOrQueue(
          context,
          { kind: 'settle-delete', record: blob, etag: current.etag, look: 0 },
          context.cleanupBudgetMs,
        );
      }
      throw err;
    }
    // A 404 after a 503 that was retried: the first attempt deleted it.
    if (reply.status === 204 || (reply.status === 404 && reply.earlierAttemptUnknown)) {
      if (blob) await doNowOrQueue(context, { kind: 'remove-media', record: blob }, context.cleanupBudgetMs);
      return new Response(null, {
        status: 204,
        headers: reply.status === 204 ? passedBackHeaders(reply) : {},
      });
    }
    // Changed between the read and the delete: the caller's If-Match no longer holds; without one, look again.
    if (reply.status === 412 && (named === null || named.trim() === '*') && attempt + 1 < ATTEMPTS) continue;
    if (reply.status === 412) throw preconditionFailed(target.id);
    if (blob && (reply.earlierAttemptUnknown || UNKNOWN_OUTCOME_STATUSES.has(reply.status))) {
      await doNowOrQueue(
        context,
        { kind: 'settle-delete', record: blob, etag: current.etag, look: 0 },
        context.cleanupBudgetMs,
      );
    }
    throw upstreamError(reply, `Attachment "${target.id}"`);
  }
}
