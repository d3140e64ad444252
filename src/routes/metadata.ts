import { assertValidId } from '../cosmos/ids.js';
import { BridgeError } from '../http/errors.js';

export interface Metadata {
  id: string;
  contentType: string;
  media: string;
  /** The body as it came, forwarded untouched so numbers and custom properties reach Cosmos DB as sent. */
  json: string;
  /** The parsed body, for checks on its other properties. */
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
  return { id: assertValidId(id, 'attachment id'), contentType, media, json: text, properties };
}
