import { passedBackHeaders, upstreamError } from '../../http/cosmos-replies.js';
import { BridgeError } from '../../http/errors.js';
import type { RequestContext, RouteParams } from '../context.js';
import { attachmentsTarget } from '../target.js';

/** The largest page a caller may ask for: the bridge's own bound on one answer. */
export const MAX_PAGE_ITEMS = 1000;
/** Longest continuation token passed on (Cosmos DB's are opaque; a bound keeps headers sane). */
const MAX_CONTINUATION_CHARS = 16 * 1024;

/**
 * `GET .../docs/{doc}/attachments`: one page of the document's attachments, as Cosmos DB answers it
 * (`{"_rid","Attachments":[...],"_count"}`). Page size from `?maxItemCount=` or `x-ms-max-item-count`
 * (-1 or 1 to 1000; Cosmos DB chooses when absent); the next page from `?continuation=` or
 * `x-ms-continuation`, Cosmos DB's token from the previous answer's `x-ms-continuation`, passed
 * through unread.
 */
export async function listAttachments(
  request: Request,
  params: RouteParams,
  context: RequestContext,
): Promise<Response> {
  const { address, options } = attachmentsTarget(request, params, context);
  const query = new URL(request.url).searchParams;
  const maxItemCount = pageSize(
    agreeing(query.get('maxItemCount'), request.headers.get('x-ms-max-item-count'), 'maxItemCount'),
  );
  const continuation = token(
    agreeing(query.get('continuation'), request.headers.get('x-ms-continuation'), 'continuation'),
  );
  const reply = await context.cosmos.listAttachments(address, { ...options, maxItemCount, continuation });
  if (reply.status !== 200) throw upstreamError(reply, 'The attachment list');
  const headers: Record<string, string> = {
    ...passedBackHeaders(reply),
    'content-type': 'application/json',
    'cache-control': 'private, no-cache',
  };
  for (const name of ['x-ms-continuation', 'x-ms-item-count']) {
    const value = reply.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  return new Response(reply.body, { status: 200, headers });
}

/** The query parameter or the header, whichever is given; both must agree. */
function agreeing(fromQuery: string | null, fromHeader: string | null, name: string): string | undefined {
  if (fromQuery !== null && fromHeader !== null && fromQuery !== fromHeader) {
    throw new BridgeError('BadRequest', `The ${name} query parameter and its header disagree.`);
  }
  return fromQuery ?? fromHeader ?? undefined;
}

function pageSize(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const size = /^-?\d{1,7}$/.test(value.trim()) ? Number(value) : NaN;
  if (size !== -1 && !(Number.isInteger(size) && size >= 1 && size <= MAX_PAGE_ITEMS)) {
    throw new BridgeError(
      'BadRequest',
      `maxItemCount must be -1 or a whole number from 1 to ${MAX_PAGE_ITEMS}.`,
    );
  }
  return size;
}

function token(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^[\x20-\x7e]+$/.test(value) || value.length > MAX_CONTINUATION_CHARS) {
    throw new BridgeError('BadRequest', 'The continuation token is not one Cosmos DB gave.');
  }
  return value;
}
