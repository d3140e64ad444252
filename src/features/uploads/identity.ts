import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { Caller } from '../../auth/caller.js';
import { BridgeError } from '../../http/errors.js';

/** The claim App Service Authentication uses for a principal's stable id, when its id header is missing. */
const NAME_IDENTIFIER = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier';

/**
 * Who created an upload, as stored with it: a keyed hash (HMAC-SHA256 with a key only the app holds)
 * of the caller's identity, so the state in Blob Storage holds neither keys nor user ids. Every later
 * request must hash to the same value; an upload URL alone grants nothing.
 *
 * - Function keys: the key presented (`x-functions-key`, else `?code=`, as the host reads them). The
 *   Functions host checked it before the app ran; two callers with different keys are different owners.
 * - Bearer tokens: issuer and `sub`.
 * - App Service Authentication: the identity provider and the principal's id.
 */
export function ownerOf(request: Request, url: URL, caller: Caller | undefined, key: KeyObject): string {
  return createHmac('sha256', key)
    .update(identity(request, url, caller))
    .digest('hex');
}

/** Constant-time comparison of two owner hashes. */
export function sameOwner(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
}

function identity(request: Request, url: URL, caller: Caller | undefined): string {
  switch (caller?.kind) {
    case 'jwt': {
      const subject = caller.claim('sub');
      if (subject === undefined) throw noIdentity('The token has no "sub" claim to own an upload with.');
      return `jwt\n${caller.claim('iss') ?? ''}\n${subject}`;
    }
    case 'easy-auth': {
      const id =
        request.headers.get('x-ms-client-principal-id') ??
        caller.claim(NAME_IDENTIFIER) ??
        caller.claim('sub');
      if (!id) throw noIdentity('The signed-in principal has no id to own an upload with.');
      return `easy-auth\n${request.headers.get('x-ms-client-principal-idp') ?? ''}\n${id}`;
    }
    default: {
      // As the Functions host reads a key: the header wins over the query string.
      const presented = request.headers.get('x-functions-key') ?? url.searchParams.get('code');
      if (!presented) throw noIdentity('A function key (x-functions-key or ?code=) is required.');
      return `key\n${presented}`;
    }
  }
}

function noIdentity(message: string): BridgeError {
  return new BridgeError('Unauthorized', message);
}
