import type { DocumentAddress } from '../cosmos/client.js';
import { assertValidId } from '../cosmos/ids.js';
import { BridgeError } from '../http/errors.js';
import { targetAllowed } from '../policy/targets.js';
import type { Settings } from '../settings.js';
import type { RouteParams } from './context.js';

/**
 * The document a route names (`{db}`, `{coll}`, `{doc}`), refused before anything is sent upstream
 * when an id is one Cosmos DB would refuse or the collection is outside ALLOWED_TARGETS.
 */
export function documentAddress(params: RouteParams, settings: Settings): DocumentAddress {
  const address: DocumentAddress = {
    db: pathId(params.db, 'database id'),
    coll: pathId(params.coll, 'collection id'),
    doc: pathId(params.doc, 'document id'),
  };
  if (!targetAllowed(settings.allowedTargets, address.db, address.coll)) {
    throw new BridgeError(
      'Forbidden',
      `${address.db}/${address.coll} is not open to callers (ALLOWED_TARGETS).`,
    );
  }
  return address;
}

/** A route segment as an id: decoded once; encoded separators or a second layer of encoding are refused. */
export function pathId(segment: string | undefined, what: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment ?? '');
  } catch {
    throw new BridgeError('InvalidId', `The ${what} in the path has malformed percent-encoding.`);
  }
  if (/%[0-9a-f]{2}/i.test(decoded)) {
    throw new BridgeError('InvalidId', `The ${what} in the path is percent-encoded twice.`);
  }
  return assertValidId(decoded, `${what} in the path`);
}
