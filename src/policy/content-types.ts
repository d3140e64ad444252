import contentType from 'content-type';
import { SettingsError } from '../settings-error.js';
import { globToRegExp } from './glob.js';

/** One entry of ALLOWED_CONTENT_TYPES: `image/png`, `image/*` or `*\/*`. */
export type ContentTypeRule = RegExp;

export function parseContentTypes(value: string, setting: string): ContentTypeRule[] {
  return value
    .split(',')
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== '')
    .map((entry, index) => {
      if (!/^[a-z0-9!#$&^_.+*-]+\/[a-z0-9!#$&^_.+*-]+$/.test(entry)) {
        throw new SettingsError(
          `${setting}: entry ${index + 1} is not a content type pattern such as "image/*" or "application/pdf".`,
        );
      }
      return globToRegExp(entry);
    });
}

/**
 * The media type (`type/subtype`, lowercase) of a Content-Type value, or undefined when it is not
 * exactly one valid media type with valid parameters (RFC 9110, by jshttp's `content-type`): a list
 * (`image/png, text/html`) or a path (`image/../../text/html`) is not one, whatever a pattern would say.
 */
export function mediaTypeOf(value: string): string | undefined {
  try {
    return contentType.parse(value).type;
  } catch {
    return undefined;
  }
}

/** Compares the media type only (parameters such as charset are ignored), case-insensitively. */
export function contentTypeAllowed(rules: ContentTypeRule[] | undefined, mediaType: string): boolean {
  return rules === undefined || rules.some((rule) => rule.test(mediaType.toLowerCase()));
}

/** Whether a stored content type (any value) names the same media type as one sent. */
export function sameMediaType(stored: unknown, sent: string): boolean {
  if (typeof stored !== 'string') return false;
  const type = (value: string) => value.split(';', 1)[0]!.trim().toLowerCase();
  return type(stored) === type(sent);
}
