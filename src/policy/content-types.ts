import { SettingsError } from '../settings-error.js';
import { globToRegExp } from './glob.js';

/** One entry of ALLOWED_CONTENT_TYPES: `image/png`, `image/*` or `*\/*`. */
export type ContentTypeRule = RegExp;

export function parseContentTypes(value: string, setting: string): ContentTypeRule[] {
  return value
    .split(',')
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== '')
    .map((entry) => {
      if (!/^[a-z0-9!#$&^_.+*-]+\/[a-z0-9!#$&^_.+*-]+$/.test(entry)) {
        throw new SettingsError(
          `${setting}: "${entry}" is not a content type pattern such as "image/*" or "application/pdf".`,
        );
      }
      return globToRegExp(entry);
    });
}

/** Compares the media type only (parameters such as charset are ignored), case-insensitively. */
export function contentTypeAllowed(rules: ContentTypeRule[] | undefined, contentType: string): boolean {
  if (rules === undefined) return true;
  const mediaType = contentType.split(';', 1)[0]!.trim().toLowerCase();
  return rules.some((rule) => rule.test(mediaType));
}
