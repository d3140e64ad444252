import {
  chooseId,
  combine,
  ID_MODE_FIELD,
  idChoiceFromField,
  idChoiceFromHeaders,
  UPSERT_HEADER,
  type IdChoice,
} from '../create/id-choice.js';
import { BridgeError } from '../../http/errors.js';
import { metadataFlag, metadataText } from './protocol.js';

/** What a resumable upload will create: the attachment id, how, and whether to check it is free first. */
export interface UploadAttachmentId {
  id: string;
  /** Create-or-replace at completion (Cosmos DB's upsert), through the AttachmentWriter. */
  upsert: boolean;
  /** Recorded on the attachment: the name a unique id was made from (`originalName`). */
  properties: Record<string, unknown> | undefined;
  /** A plain create: a taken id is refused at creation, before any byte is sent. */
  checkTaken: boolean;
}

/**
 * The attachment an upload will create, from its Upload-Metadata and the creation request's headers:
 * `filename` (required) is the id, as a multipart part's file name is. The id choices are the read
 * side's (src/features/create/id-choice.ts), made by the same headers (`x-bridge-id-mode`,
 * `x-ms-documentdb-is-upsert`) or by Upload-Metadata keys of the form fields' names (`idMode`,
 * `x-ms-documentdb-is-upsert`), plus the flags `uniqueId` and `upsert`; choices that disagree are 400.
 */
export function attachmentIdFrom(pairs: Map<string, Buffer>, headers: Headers): UploadAttachmentId {
  const filename = metadataText(pairs, 'filename');
  if (filename === undefined || filename === '') {
    throw new BridgeError(
      'MissingFilename',
      'Upload-Metadata must name the file ("filename", base64): it is the attachment id.',
    );
  }
  // A path in a file name is reduced to its last segment, as for multipart parts.
  const name = filename.split(/[/\\]/).pop()!;
  const choice = combine(idChoiceFromHeaders(headers), metadataChoice(pairs)) ?? 'name';
  const chosen = chooseId(choice, name, 'file name (Upload-Metadata "filename")');
  return { ...chosen, checkTaken: choice === 'name' };
}

/** The id choice Upload-Metadata makes, or undefined when it makes none. */
function metadataChoice(pairs: Map<string, Buffer>): IdChoice | undefined {
  let choice: IdChoice | undefined;
  for (const key of [ID_MODE_FIELD, UPSERT_HEADER]) {
    const value = metadataText(pairs, key);
    if (value !== undefined) choice = combine(choice, idChoiceFromField(key, value));
  }
  if (metadataFlag(pairs, 'uniqueId')) choice = combine(choice, 'unique');
  if (metadataFlag(pairs, 'upsert')) choice = combine(choice, 'upsert');
  return choice;
}
