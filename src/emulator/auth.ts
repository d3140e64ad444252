import { timingSafeEqual, type KeyObject } from 'node:crypto';
import { signature, stringToSign, type SignedRequest } from '../cosmos/signer.js';

/** The service accepts tokens within 15 minutes of its clock. */
export const ALLOWED_SKEW_MS = 15 * 60 * 1000;

export type AuthResult = { ok: true } | { ok: false; status: 401 | 403; message: string };

/**
 * Checks a master-key `authorization` header the way Cosmos DB does: the token names type `master`
 * and version `1.0`, `x-ms-date` is an RFC 1123 date within the allowed skew, and the signature over
 * verb, resource type, resource link and date matches.
 */
export function verifyMasterKey(
  key: KeyObject,
  authorization: string | undefined,
  date: string | undefined,
  request: Omit<SignedRequest, 'date'>,
  now: number = Date.now(),
): AuthResult {
  if (!authorization) {
    return unauthorized(
      'Required Header authorization is missing. Ensure a valid Authorization token is passed.',
    );
  }
  if (!date) {
    return unauthorized(
      'Authorization token mandates Date header. Please pass in RFC 1123 style date format.',
    );
  }
  const time = Date.parse(date);
  if (!/GMT$/.test(date) || Number.isNaN(time)) {
    return unauthorized(
      'The input date header is invalid format. Please pass in RFC 1123 style date format.',
    );
  }
  if (Math.abs(now - time) > ALLOWED_SKEW_MS) {
    const start = new Date(time).toUTCString();
    const expiry = new Date(time + ALLOWED_SKEW_MS).toUTCString();
    return {
      ok: false,
      status: 403,
      message:
        'The authorization token is not valid at the current time. Please create another token and retry ' +
        `(token start time: ${start}, token expiry time: ${expiry}, current server time: ${new Date(now).toUTCString()}).`,
    };
  }
  const token = parseToken(authorization);
  if (!token || token.type !== 'master' || token.ver !== '1.0' || !token.sig) {
    return unauthorized('The authorization token is malformed: expected type=master&ver=1.0&sig=...');
  }
  const signed = { ...request, date };
  const expected = Buffer.from(signature(key, signed), 'base64');
  const presented = Buffer.from(token.sig, 'base64');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
    const payload = stringToSign(signed).replace(/\n/g, '\\n');
    return unauthorized(
      "The input authorization token can't serve the request. The wrong key is being used or the expected " +
        `payload is not built as per the protocol. Server used the following payload to sign: '${payload}'`,
    );
  }
  return { ok: true };
}

function unauthorized(message: string): AuthResult {
  return { ok: false, status: 401, message };
}

/** `type=master&ver=1.0&sig=...`, URL-encoded once; base64 `+` must survive, so no form decoding. */
function parseToken(header: string): Record<string, string> | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(header);
  } catch {
    return undefined;
  }
  const fields: Record<string, string> = {};
  for (const pair of decoded.split('&')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) return undefined;
    fields[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return fields;
}
