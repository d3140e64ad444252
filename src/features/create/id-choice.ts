import { ORIGINAL_NAME_PROPERTY, uniqueAttachmentId } from '../../attachments/ids.js';
import { assertValidId } from '../../cosmos/ids.js';
import { BridgeError } from '../../http/errors.js';

/**
 * How a create names its attachments, chosen per request:
 * - `name` (the default): the file name, Slug or metadata id is the id; a taken id is 409.
 * - `upsert`: the same id, created or replaced (Cosmos DB's `x-ms-documentdb-is-upsert`).
 * - `unique`: an id derived from the name that cannot collide, the name kept as `originalName`.
 */
export type IdChoice = 'name' | 'upsert' | 'unique';

/** The bridge's own header for the choice, and the form field (before the files) that does the same. */
export const ID_MODE_HEADER = 'x-bridge-id-mode';
export const ID_MODE_FIELD = 'idMode';
/** Cosmos DB's own upsert header, accepted as a header and as a form field. */
export const UPSERT_HEADER = 'x-ms-documentdb-is-upsert';

const CHOICES: readonly IdChoice[] = ['name', 'upsert', 'unique'];

/** The choice the request's headers make, or undefined when they make none. */
export function idChoiceFromHeaders(headers: Headers): IdChoice | undefined {
  const mode = headers.get(ID_MODE_HEADER);
  const upsert = headers.get(UPSERT_HEADER);
  return combine(
    mode === null ? undefined : parseMode(mode, `The ${ID_MODE_HEADER} header`),
    upsert === null ? undefined : parseUpsert(upsert, `The ${UPSERT_HEADER} header`),
  );
}

/** The choice a form field makes (`idMode` or `x-ms-documentdb-is-upsert`), or undefined for other fields. */
export function idChoiceFromField(name: string, value: string): IdChoice | undefined {
  if (name === ID_MODE_FIELD) return parseMode(value, `The ${ID_MODE_FIELD} field`);
  if (name.toLowerCase() === UPSERT_HEADER) return parseUpsert(value, `The ${UPSERT_HEADER} field`);
  return undefined;
}

/** Two choices made for one request (a header and a field, say) must agree; `name` when none is made. */
export function combine(a: IdChoice | undefined, b: IdChoice | undefined): IdChoice | undefined {
  if (a !== undefined && b !== undefined && a !== b) {
    throw new BridgeError('InvalidHeader', `The request asks for ids by "${a}" and by "${b}"; choose one.`);
  }
  return a ?? b;
}

/** An attachment's id under a choice, from a name already checked as an id or not (unique ids make one). */
export interface ChosenId {
  id: string;
  upsert: boolean;
  /** Recorded on the attachment: the name a derived id was made from. */
  properties: Record<string, unknown> | undefined;
}

export function chooseId(choice: IdChoice, name: string, what: string): ChosenId {
  if (choice === 'unique') {
    return { id: uniqueAttachmentId(name), upsert: false, properties: { [ORIGINAL_NAME_PROPERTY]: name } };
  }
  return { id: assertValidId(name, what), upsert: choice === 'upsert', properties: undefined };
}

function parseMode(value: string, what: string): IdChoice {
  const mode = value.trim().toLowerCase();
  if (!(CHOICES as readonly string[]).includes(mode)) {
    throw new BridgeError('InvalidHeader', `${what} must be one of ${CHOICES.join(', ')}.`);
  }
  return mode as IdChoice;
}

/** `true` asks for upsert; `false` asks for nothing in particular (Cosmos DB's default: a plain create). */
function parseUpsert(value: string, what: string): IdChoice | undefined {
  const flag = value.trim().toLowerCase();
  if (flag === 'true') return 'upsert';
  if (flag === 'false') return undefined;
  throw new BridgeError('InvalidHeader', `${what} must be true or false.`);
}
