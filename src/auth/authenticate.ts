import { createHash, timingSafeEqual } from 'node:crypto';
import { BridgeError } from '../http/errors.js';
import type { AuthSettings } from '../settings.js';
import type { Caller } from './caller.js';
import { easyAuthCaller } from './easy-auth.js';
import type { JwtVerifier } from './jwt.js';

/** Establishes who calls an upload route, or refuses with 401. */
export type Authenticate = (request: Request, url: URL) => Promise<Caller>;

const NO_CLAIMS: Caller['claim'] = () => undefined;

/**
 * Deny by default. With end-user sign-in configured (bearer tokens and/or Easy Auth), one of those is
 * required and function keys are not accepted. Otherwise the route is keyed: in Azure the Functions host
 * checks the key before the core runs; the dev host passes `functionKey` for the core to check.
 */
export function authenticator(settings: AuthSettings, functionKey: string | undefined): Authenticate {
  // jose is loaded only when tokens are in use: it adds memory every other configuration would carry.
  const jwtSettings = settings.jwt;
  let verifier: Promise<JwtVerifier> | undefined;
  const jwt = jwtSettings && {
    verify: async (authorization: string | null) => {
      verifier ??= import('./jwt.js').then(({ JwtVerifier: Verifier }) => new Verifier(jwtSettings));
      return (await verifier).verify(authorization);
    },
  };
  if (jwt || settings.easyAuth) {
    return async (request) => {
      if (settings.easyAuth) {
        const principal = easyAuthCaller(request.headers.get('x-ms-client-principal'));
        if (principal) return principal;
        if (!jwt) throw new BridgeError('Unauthorized', 'Sign-in is required (no x-ms-client-principal).');
      }
      return jwt!.verify(request.headers.get('authorization'));
    };
  }
  if (functionKey === undefined) return () => Promise.resolve({ kind: 'host', claim: NO_CLAIMS });
  const expected = digestOf(functionKey);
  return (request, url) => {
    // As the Functions host does: the header wins over the query string.
    const presented = request.headers.get('x-functions-key') ?? url.searchParams.get('code');
    if (presented === null || !timingSafeEqual(digestOf(presented), expected)) {
      return Promise.reject(
        new BridgeError(
          'Unauthorized',
          'A valid function key is required (x-functions-key header or ?code=).',
        ),
      );
    }
    return Promise.resolve({ kind: 'function-key', claim: NO_CLAIMS });
  };
}

/** True when end users sign in, so the host must let requests through to the core (authLevel anonymous). */
export function signsInEndUsers(settings: AuthSettings): boolean {
  return settings.jwt !== undefined || settings.easyAuth;
}

/** Secrets are compared by digest: equal lengths for timingSafeEqual, whatever was presented. */
function digestOf(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}
