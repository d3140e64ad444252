import { randomBytes } from 'node:crypto';
import { assertValidId } from '../../cosmos/ids.js';
import { BridgeError } from '../../http/errors.js';
import { metadataFlag, metadataText } from './protocol.js';

/** The property a unique id keeps the file's own name in. */
export const ORIGINAL_NAME_PROPERTY = 'originalName';
/** Characters of random prefix in a unique id: 48 bits, base64url. */
const PREFIX_CHARS = 8;
const MAX_ID_CHARS = 255;

/**
 * The attachment an upload will create, from its Upload-Metadata: `filename` (required) is the id, as
 * a multipart part's file name is; `uniqueId` makes a fresh id from it (a random prefix and the
 * sanitised name, the name kept as `originalName`), so a taken name never fails an upload; `upsert`
 * (create-or-replace) is refused for now (see docs/resumable-uploads.md).
 */
export function attachmentIdFrom(pairs: Map<string, Buffer>): {
  id: string;
  properties: Record<string, unknown> | undefined;
  checkTaken: boolean;
} {
  const filename = metadataText(pairs, 'filename');
  if (filename === undefined || filename === '') {
    throw new BridgeError(
      'MissingFilename',
      'Upload-Metadata must name the file ("filename", base64): it is the attachment id.',
    );
  }
  // A path in a file name is reduced to its last segment, as for multipart parts.
  const name = filename.split(/[/\\]/).pop()!;
  if (metadataFlag(pairs, 'upsert')) {
    throw new BridgeError(
      'BadRequest',
      'Create-or-replace ("upsert") is not available for resumable uploads yet; use uniqueId or a free name.',
    );
  }
  if (metadataFlag(pairs, 'uniqueId')) {
    return { id: uniqueIdFor(name), properties: { [ORIGINAL_NAME_PROPERTY]: name }, checkTaken: false };
  }
  return {
    id: assertValidId(name, 'file name (Upload-Metadata "filename")'),
    properties: undefined,
    checkTaken: true,
  };
}

/** A random prefix, a dash and the name made valid as an id (forbidden characters become `_`). */
export function uniqueIdFor(name: string): string {
  const prefix = randomBytes(6).toString('base64url').slice(0, PREFIX_CHARS);
  // eslint-disable-next-line no-control-regex
  let rest = [...name.replace(/[/\\?#\u0000-\u001f\u007f-\u009f]/gu, '_')]
    .slice(0, MAX_ID_CHARS - PREFIX_CHARS - 1)
    .join('')
    .replace(/ +$/, '');
  if (rest === '' || rest === '.' || rest === '..') rest = 'file';
  return assertValidId(`${prefix}-${rest}`, 'unique id');
}
