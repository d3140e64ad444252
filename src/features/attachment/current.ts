import { foundIn } from '../../attachments/lookups.js';
import type { FoundAttachment } from '../../attachments/record.js';
import { entityTags, ifMatchHolds } from '../../http/conditional.js';
import { upstreamError } from '../../http/cosmos-replies.js';
import { BridgeError } from '../../http/errors.js';
import type { RequestContext } from '../context.js';
import type { AttachmentsTarget } from '../target.js';

/**
 * The attachment a write names, as it is now, held to the caller's `If-Match` (412 when it is not at
 * the version named): the version the write then makes conditional on, so that what the write undoes
 * or removes (its old blob) is exactly what it replaced or deleted. Cosmos DB's 404 when it is not there.
 */
export async function currentVersion(
  request: Request,
  target: AttachmentsTarget & { id: string },
  context: RequestContext,
): Promise<FoundAttachment> {
  const ifMatch = request.headers.get('if-match');
  if (ifMatch !== null && entityTags(ifMatch) !== '*' && entityTags(ifMatch).length === 0) {
    throw new BridgeError('InvalidHeader', 'If-Match must be "*" or one or more quoted entity tags.');
  }
  const reply = await context.cosmos.readAttachment(target.address, target.id, target.options);
  if (reply.status !== 200) throw upstreamError(reply, `Attachment "${target.id}"`);
  const found = foundIn(reply, context.cosmos);
  if (!ifMatchHolds(ifMatch, found.etag)) throw preconditionFailed(target.id);
  return found;
}

export function preconditionFailed(id: string): BridgeError {
  return new BridgeError(
    'PreconditionFailed',
    `Attachment "${id}" is no longer at the version If-Match names; read it again.`,
  );
}
