import type { CallOptions, DocumentAddress } from '../cosmos/client.js';
import { parsePartitionKeyField, samePartitionKey, type PartitionKey } from '../cosmos/partition-key.js';
import { callOptionsFrom } from '../http/cosmos-replies.js';
import { BridgeError } from '../http/errors.js';
import { documentAddress, pathId } from './address.js';
import type { RequestContext, RouteParams } from './context.js';

/** What a route on a document's attachments reaches, checked before anything is sent upstream. */
export interface AttachmentsTarget {
  address: DocumentAddress;
  /** After the access policy: with AUTH_PARTITION_CLAIM, always the caller's own. */
  partitionKey: PartitionKey | undefined;
  options: CallOptions;
}

/**
 * The document a route names, under ALLOWED_TARGETS, and the partition key the caller may use: from
 * the `x-ms-documentdb-partitionkey` header or `?partitionKey=` (a plain value or a JSON array; a link
 * in an `<img>` or a download cannot carry headers), the two agreeing when both are given, and then
 * the access policy (a signed-in user reaches only its own partition).
 */
export function attachmentsTarget(
  request: Request,
  params: RouteParams,
  context: RequestContext,
): AttachmentsTarget {
  const address = documentAddress(params, context.settings);
  const options = callOptionsFrom(request);
  const query = new URL(request.url).searchParams.get('partitionKey');
  const fromQuery = query === null ? undefined : parsePartitionKeyField(query);
  if (options.partitionKey && fromQuery && !samePartitionKey(options.partitionKey, fromQuery)) {
    throw new BridgeError(
      'InvalidPartitionKey',
      'The partitionKey query parameter and the x-ms-documentdb-partitionkey header disagree.',
    );
  }
  const partitionKey = context.policy.partitionKey(options.partitionKey ?? fromQuery);
  return { address, partitionKey, options: { ...options, partitionKey } };
}

/** The same, for a route that names one attachment (`{id}`). */
export function attachmentTarget(
  request: Request,
  params: RouteParams,
  context: RequestContext,
): AttachmentsTarget & { id: string } {
  const target = attachmentsTarget(request, params, context);
  return { ...target, id: pathId(params.id, 'attachment id') };
}
