import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { findAttachment } from '../../attachments/lookups.js';
import { WEBHOOK_ID_PROPERTY, parseMetadata } from '../../attachments/metadata.js';
import { UPLOAD_ID_PROPERTY } from '../../attachments/record.js';
import { AttachmentWriter } from '../../attachments/writer.js';
import { parsePartitionKeyField, samePartitionKey } from '../../cosmos/partition-key.js';
import { callOptionsFrom, passedBackHeaders, replyAsResponse } from '../../http/cosmos-replies.js';
import { BridgeError, UpstreamStatusError } from '../../http/errors.js';
import { decodeUtf8, readSmallBody } from '../../http/request-body.js';
import { documentAddress } from '../address.js';
import { bodyLimits } from '../body-limits.js';
import type { RequestContext, RouteParams } from '../context.js';

const WEBHOOK_ID = /^[\x21-\x7e]{1,256}$/;
/** Creates tried for one delivery when its attachment keeps changing under it. */
const ATTEMPTS = 4;

/**
 * `POST /api/webhooks/dbs/{db}/colls/{coll}/docs/{doc}/attachments`: a metadata attachment announced by a
 * Standard Webhooks sender. The signature (any of the configured secrets) is checked before anything
 * else is looked at. The delivery's `webhook-id` is stored on the attachment: a redelivery finds it
 * there and gets the first outcome back, from any instance of a scaled-out app, with no extra store.
 */
export async function receiveWebhook(
  request: Request,
  params: RouteParams,
  context: RequestContext,
): Promise<Response> {
  const { settings } = context;
  if (settings.webhookSecrets.length === 0) throw new BridgeError('NotFound', 'No such route.');
  const address = documentAddress(params, settings);
  const bytes = await readSmallBody(
    request,
    bodyLimits(context, settings.limits.maxFieldBytes, 'MAX_FIELD_BYTES'),
  );
  const webhookId = verifySignature(bytes, request.headers, settings.webhookSecrets);
  const metadata = parseMetadata(decodeUtf8(bytes, 'The webhook body'), 'The webhook body');
  const options = callOptionsFrom(request);
  const partitionKey = partitionKeyOf(request, options.partitionKey);
  const writer = new AttachmentWriter(context, address, options.sessionToken);
  const subject = `Attachment "${metadata.id}"`;
  let markSeen: unknown;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    try {
      // Redeliveries are recognised by their webhook-id below, and answered as replays.
      const reply = await writer.createMetadata(
        { [WEBHOOK_ID_PROPERTY]: webhookId, ...metadata },
        partitionKey,
        subject,
        {
          takeOver: false,
        },
      );
      return replyAsResponse(reply);
    } catch (err) {
      if (!(err instanceof UpstreamStatusError && err.status === 409)) throw err;
      const found = await findAttachment(context.cosmos, { address, partitionKey, id: metadata.id });
      if (!found) continue; // gone meanwhile: create it again
      if (found.resource[WEBHOOK_ID_PROPERTY] !== webhookId) throw err;
      // Another redelivery took it over since it was first seen: it is safe from the first delivery's clean-up.
      const mark = found.resource[UPLOAD_ID_PROPERTY];
      if (attempt > 0 && mark !== markSeen) return replayed(JSON.stringify(found.resource), {});
      markSeen = mark;
      // A redelivery: the first delivery's attachment becomes this one's, so no clean-up of the first
      // (whose sender may never have heard of it) can remove what this answer confirms.
      const adopted = await writer.adopt(found, partitionKey);
      if (adopted) return replayed(adopted.body, passedBackHeaders(adopted));
      // Changed or gone meanwhile: look again.
    }
  }
  throw new BridgeError(
    'UpstreamUnavailable',
    `${subject} kept changing while it was being stored; send it again.`,
    {
      'retry-after': '1',
    },
  );
}

/** The answer to a redelivery: the attachment as it now stands, marked as a replay. */
function replayed(body: string, headers: Record<string, string>): Response {
  return new Response(body, {
    status: 201,
    headers: { ...headers, 'content-type': 'application/json', 'idempotent-replayed': 'true' },
  });
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
function partitionKeyOf(request: Request, fromHeader: ReturnType<typeof callOptionsFrom>['partitionKey']) {
  const query = new URL(request.url).searchParams.get('partitionKey');
  const fromQuery = query === null ? undefined : parsePartitionKeyField(query);
  if (fromHeader && fromQuery && !samePartitionKey(fromHeader, fromQuery)) {
    throw new BridgeError(
      'InvalidPartitionKey',
      'The partitionKey query parameter and the partition key header disagree.',
    );
  }
  return fromHeader ?? fromQuery;
}
