import { randomString } from '../random.js';
import { idProblem } from '../cosmos/ids.js';

/** Where a derived id keeps the name it was made from (a unique id is not the file's name). */
export const ORIGINAL_NAME_PROPERTY = 'originalName';

const MAX_ID_CHARS = 255;
/** 8 URL-safe characters: 48 random bits, so two uploads of one name to one document never meet. */
const PREFIX_BYTES = 6;
/** What a name is called when nothing of it survives sanitising. */
const PLACEHOLDER = 'file';

/**
 * An attachment id that cannot collide with another upload's: a short random prefix, `-`, and the file
 * name made safe as an id, within Cosmos DB's 255 characters (the end of the name, its extension, is
 * kept when it must be shortened). Photo pickers name every file `image.jpg`; two phones uploading to
 * one document each get their own attachment. The one derivation for every upload route (multipart,
 * raw media, resumable uploads).
 */
export function uniqueAttachmentId(name: string): string {
  const prefix = randomString(PREFIX_BYTES, 'base64url');
  const room = MAX_ID_CHARS - prefix.length - 1;
  const id = `${prefix}-${shorten(safeName(name), room)}`;
  // Every step above keeps to what idProblem accepts; this only guards the derivation itself.
  if (idProblem(id) !== undefined) return `${prefix}-${PLACEHOLDER}`;
  return id;
}

/**
 * A file name as an attachment id's tail: the last path segment; characters Cosmos DB refuses in ids
 * (`/ \ ? #`), control characters, `%` (the bridge's routes refuse ids that look percent-encoded) and
 * lone surrogates become `_`; leading and trailing spaces and dots go.
 */
export function safeName(name: string): string {
  const lastSegment = name.split(/[/\\]/).at(-1) ?? '';
  const cleaned = [...lastSegment.normalize('NFC')]
    // eslint-disable-next-line no-control-regex
    .map((ch) => (/[?#%\u0000-\u001f\u007f-\u009f]/u.test(ch) || isLoneSurrogate(ch) ? '_' : ch))
    .join('')
    .replace(/^[\s.]+|[\s.]+$/gu, '');
  return cleaned === '' ? PLACEHOLDER : cleaned;
}

/** At most `room` characters (code points), keeping the extension when there is a short one. */
function shorten(name: string, room: number): string {
  const chars = [...name];
  if (chars.length <= room) return name;
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 ? [...name.slice(dot)] : [];
  if (extension.length > 0 && extension.length <= 16) {
    return [...chars.slice(0, room - extension.length), ...extension]
      .join('')
      .replace(/[\s.]+(?=\.[^.]*$)/u, '');
  }
  return chars
    .slice(0, room)
    .join('')
    .replace(/[\s.]+$/u, '');
}

function isLoneSurrogate(ch: string): boolean {
  return ch.length === 1 && /[\uD800-\uDFFF]/.test(ch);
}
