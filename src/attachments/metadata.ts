import { assertValidId } from '../cosmos/ids.js';
import { BridgeError } from '../http/errors.js';
import { nestsDeeperThan } from '../http/json-depth.js';
import { UPLOAD_ID_PROPERTY } from './record.js';

/** Recorded by the webhook route on the attachments it creates; nobody else may set it. */
export const WEBHOOK_ID_PROPERTY = 'webhookId';
/** Properties the bridge records itself: a caller setting one is refused. */
const RESERVED = [WEBHOOK_ID_PROPERTY, UPLOAD_ID_PROPERTY];
/** Deepest nesting of objects and arrays a metadata body may have. */
export const MAX_JSON_DEPTH = 32;

/**
 * A metadata attachment body as validated: the parsed object itself is what is forwarded (with a key
 * given twice, JSON.parse keeps the last one, so forwarding the original text could let Cosmos DB
 * store a value that was never checked).
 */
export type Metadata = Record<string, unknown> & { id: string; contentType: string; media: string };

/** A metadata attachment body: a JSON object with a valid `id`, and `contentType` and `media` strings. */
export function parseMetadata(text: string, what: string): Metadata {
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
    throw new BridgeError(
      'InvalidJson',
      `${what} nests objects or arrays deeper than ${MAX_JSON_DEPTH} levels.`,
    );
  }
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
  for (const name of RESERVED) {
    if (name in properties) {
      throw new BridgeError('InvalidJson', `${what} must not set "${name}": the bridge records it itself.`);
    }
  }
  assertValidId(id, 'attachment id');
  return properties as Metadata;
}
