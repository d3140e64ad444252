import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { DocumentAddress } from '../cosmos/client.js';
import { parsePartitionKeyField, samePartitionKey } from '../cosmos/partition-key.js';
import { BridgeError, UpstreamStatusError } from '../http/errors.js';
import { decodeUtf8, readSmallBody } from '../http/request-body.js';
import { AttachmentWriter, type RouteContext } from './attachment-writer.js';
import { callOptionsFrom, passedBackHeaders, replyAsResponse } from './cosmos-replies.js';
import { WEBHOOK_ID_PROPERTY, parseMetadata } from './metadata.js';

const WEBHOOK_ID = /^[\x21-\x7e]{1,256}$/;

/**
 * `POST /api/webhooks/dbs/{db}/colls/{coll}/docs/{doc}/attachments`: a metadata attachment announced by a
 * Standard Webhooks sender. The signature (any of the configured secrets) is checked before anything
 * else is looked at. The delivery's `webhook-id` is stored on the attachment: a redelivery finds it
 * there and gets the first outcome back, from any instance of a scaled-out app, with no extra store.
 */
export async function receiveWebhook(
  request: Request,
  url: URL,
  address: DocumentAddress,
  context: RouteContext & { webhookSecrets: string[] },
): Promise<Response> {
  const bytes = await readSmallBody(request, context.settings.limits.maxFieldBytes, 'MAX_FIELD_BYTES');
  const webhookId = verifySignature(bytes, request.headers, context.webhookSecrets);
  const metadata = parseMetadata(decodeUtf8(bytes, 'The webhook body'), 'The webhook body');
  const options = { ...callOptionsFrom(request), partitionKey: partitionKeyOf(request, url) };
  const json = JSON.stringify({ [WEBHOOK_ID_PROPERTY]: webhookId, ...metadata.properties });
  const writer = new AttachmentWriter(context, address);
  try {
    const reply = await writer.createMetadata({ ...metadata, json }, options, `Attachment "${metadata.id}"`);
    return replyAsResponse(reply);
  } catch (err) {
    if (!(err instanceof UpstreamStatusError && err.status === 409)) throw err;
    const found = await context.cosmos.readAttachment(address, metadata.id, options);
    const existing = found.status === 200 ? (JSON.parse(found.body) as Record<string, unknown>) : undefined;
    if (existing?.[WEBHOOK_ID_PROPERTY] !== webhookId) throw err;
    return new Response(found.body, {
      status: 201,
      headers: {
        ...passedBackHeaders(found),
        'content-type': 'application/json',
        'idempotent-replayed': 'true',
      },
    });
  }
}

/** Returns the delivery's `webhook-id` once one of the secrets verifies the signature. */
function verifySignature(body: Buffer, headers: Headers, secrets: string[]): string {
  const signed = {
    'webhook-id': headers.get('webhook-id') ?? '',
    'webhook-timestamp': headers.get('webhook-timestamp') ?? '',
    'webhook-signature': headers.get('webhook-signature') ?? '',
  };
  let reason = 'No matching signature found';
  for (const secret of secrets) {
    try {
      new Webhook(secret).verify(body, signed, { jsonParse: false });
      if (!WEBHOOK_ID.test(signed['webhook-id'])) {
        throw new BridgeError(
          'InvalidHeader',
          'The webhook-id header must be 1 to 256 printable ASCII characters.',
        );
      }
      return signed['webhook-id'];
    } catch (err) {
      if (!(err instanceof WebhookVerificationError)) throw err;
      reason = err.message;
      // A missing header or a stale timestamp fails the same way with every secret.
      if (reason !== 'No matching signature found') break;
    }
  }
  throw new BridgeError('InvalidSignature', `The webhook signature is not valid: ${reason}.`);
}

/** From the `x-ms-documentdb-partitionkey` header or `?partitionKey=` (a plain value or a JSON array). */
function partitionKeyOf(request: Request, url: URL) {
  const fromHeader = callOptionsFrom(request).partitionKey;
  const query = url.searchParams.get('partitionKey');
  const fromQuery = query === null ? undefined : parsePartitionKeyField(query);
  if (fromHeader && fromQuery && !samePartitionKey(fromHeader, fromQuery)) {
    throw new BridgeError(
      'InvalidPartitionKey',
      'The partitionKey query parameter and the partition key header disagree.',
    );
  }
  return fromHeader ?? fromQuery;
}
