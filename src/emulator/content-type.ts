import { badRequest } from './errors.js';

/**
 * IANA's top-level media types. The service refuses an attachment whose type is not one of them:
 * the SDKs' own attachment tests expect 400 for `junt/test` and 201 for `application/text` (a subtype
 * nobody registered), so the subtype is free and the top-level type is checked (docs/cosmos-rest.md).
 */
const TOP_LEVEL_TYPES = new Set([
  'application',
  'audio',
  'example',
  'font',
  'haptics',
  'image',
  'message',
  'model',
  'multipart',
  'text',
  'video',
]);

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const MEDIA_TYPE = new RegExp(`^(${TOKEN})/(${TOKEN})\\s*(;.*)?$`);

/** The media type of an attachment's bytes, without parameters; 400 for a malformed or unknown one. */
export function attachmentContentType(header: string | undefined): string {
  const value = (header ?? 'application/octet-stream').trim();
  const match = MEDIA_TYPE.exec(value);
  if (!match || !TOP_LEVEL_TYPES.has(match[1]!.toLowerCase())) {
    throw badRequest(`The content type "${value}" is not a valid media type.`);
  }
  return `${match[1]}/${match[2]}`;
}
