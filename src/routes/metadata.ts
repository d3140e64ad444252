import { assertValidId } from '../cosmos/ids.js';
import { BridgeError } from '../http/errors.js';

/** Recorded by the webhook route on the attachments it creates; nobody else may set it. */
export const WEBHOOK_ID_PROPERTY = 'webhookId';

export interface Metadata {
  id: string;
  contentType: string;
  media: string;
  /**
   * The body as validated, serialised again: with a key given twice, JSON.parse keeps the last one,
   * and forwarding the original text could let Cosmos DB store a value that was never checked.
   */
  json: string;
  /** The parsed body. */
  properties: Record<string, unknown>;
}

/** A metadata attachment body: a JSON object with a valid `id`, and `contentType` and `media` strings. */
export function parseMetadata(text: string, what: string): Metadata {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BridgeError('InvalidJson', `${what} is not valid JSON.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new BridgeError(
      'InvalidJson',
      `${what} must be a JSON object such as {"id","contentType","media"}.`,
    );
  }
  const properties = parsed as Record<string, unknown>;
  const { id, contentType, media } = properties;
  if (typeof id !== 'string') throw new BridgeError('InvalidId', `${what} needs a string "id".`);
  if (typeof contentType !== 'string' || contentType.trim() === '') {
    throw new BridgeError('InvalidJson', `${what} needs a string "contentType".`);
  }
  if (typeof media !== 'string' || media.trim() === '') {
    throw new BridgeError('InvalidJson', `${what} needs a string "media" (where the media is).`);
  }
  if (WEBHOOK_ID_PROPERTY in properties) {
    throw new BridgeError(
      'InvalidJson',
      `${what} must not set "${WEBHOOK_ID_PROPERTY}": the bridge records it for webhook deliveries.`,
    );
  }
  return {
    id: assertValidId(id, 'attachment id'),
    contentType,
    media,
    json: JSON.stringify(properties),
    properties,
  };
}
