import { BridgeError } from '../http/errors.js';
import { claimsCaller, type Caller } from './caller.js';

/**
 * The signed-in user App Service Authentication ("Easy Auth") passes as `x-ms-client-principal`:
 * base64 JSON `{"auth_typ","claims":[{"typ","val"}],...}`. Only trustworthy when the platform injects
 * it, which is why AUTH_EASY_AUTH must be turned on explicitly.
 */
export function easyAuthCaller(header: string | null): Caller | undefined {
  if (header === null) return undefined;
  let principal: unknown;
  try {
    principal = JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
  } catch {
    throw invalid();
  }
  const claims = (principal as { claims?: unknown } | null)?.claims;
  if (!Array.isArray(claims)) throw invalid();
  const values = new Map<string, unknown>();
  for (const claim of claims as unknown[]) {
    const { typ, val } = (claim ?? {}) as { typ?: unknown; val?: unknown };
    // The first value of a repeated claim type wins; later ones (e.g. several roles) are ignored here.
    if (typeof typ === 'string' && typeof val === 'string' && !values.has(typ)) values.set(typ, val);
  }
  return claimsCaller('easy-auth', values);
}

function invalid(): BridgeError {
  return new BridgeError('Unauthorized', 'The x-ms-client-principal header is malformed.');
}
