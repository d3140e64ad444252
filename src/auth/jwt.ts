import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type RemoteJWKSet } from 'jose';
import { BridgeError } from '../http/errors.js';
import type { JwtSettings } from '../settings.js';
import { claimsCaller, type Caller } from './caller.js';

/** Asymmetric algorithms only: a JWKS never holds the shared secret an HS256 token would need. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
/** Allowance for clocks that differ a little between the identity provider and the function app. */
const CLOCK_TOLERANCE_S = 30;
const FETCH_TIMEOUT_MS = 5_000;
/** After a failed discovery, callers get 503 for this long before it is tried again. */
const DISCOVERY_RETRY_MS = 5_000;
/**
 * A token naming a key id the cached set lacks makes the set be fetched again at once (the issuer
 * rotated its keys), but at most this often, so forged key ids cannot hammer the identity provider.
 */
const UNKNOWN_KEY_RELOAD_MS = 10_000;

/**
 * Verifies OIDC bearer tokens: signature against the issuer's JWKS (cached; fetched again when a
 * token names an unknown key id), `iss`, `aud`, `exp` and `nbf`.
 */
export class JwtVerifier {
  readonly #settings: JwtSettings;
  #keys: RemoteJWKSet | undefined;
  #discovery: Promise<RemoteJWKSet> | undefined;
  #discoveryFailedAt = 0;
  #forcedReloadAt = 0;

  constructor(settings: JwtSettings) {
    this.#settings = settings;
    if (settings.jwksUri) this.#keys = remoteKeys(settings.jwksUri);
  }

  async verify(authorization: string | null): Promise<Caller> {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    if (!token) throw unauthorized('A bearer token is required (Authorization: Bearer <token>).', undefined);
    const keys = await this.#keySet();
    try {
      return await this.#verifyWith(token, keys);
    } catch (err) {
      if (
        !(err instanceof joseErrors.JWKSNoMatchingKey) ||
        Date.now() - this.#forcedReloadAt < UNKNOWN_KEY_RELOAD_MS
      ) {
        throw tokenError(err);
      }
    }
    this.#forcedReloadAt = Date.now();
    try {
      await keys.reload();
      return await this.#verifyWith(token, keys);
    } catch (err) {
      throw tokenError(err);
    }
  }

  async #verifyWith(token: string, keys: RemoteJWKSet): Promise<Caller> {
    const { payload } = await jwtVerify(token, keys, {
      issuer: this.#settings.issuer,
      audience: this.#settings.audience,
      clockTolerance: CLOCK_TOLERANCE_S,
      algorithms: ALGORITHMS,
      // jose checks `exp` only when present: a token without one would be good forever.
      requiredClaims: ['exp'],
    });
    return claimsCaller('jwt', new Map(Object.entries(payload)));
  }

  async #keySet(): Promise<RemoteJWKSet> {
    if (this.#keys) return this.#keys;
    if (Date.now() - this.#discoveryFailedAt < DISCOVERY_RETRY_MS) throw unavailable();
    this.#discovery ??= discoverKeys(this.#settings.issuer);
    try {
      this.#keys = await this.#discovery;
      return this.#keys;
    } catch {
      this.#discoveryFailedAt = Date.now();
      this.#discovery = undefined;
      throw unavailable();
    }
  }
}

/** The issuer's `jwks_uri` from its OpenID configuration, which must name the same issuer. */
async function discoverKeys(issuer: string): Promise<RemoteJWKSet> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'error' });
  if (!response.ok) throw new Error(`OpenID configuration answered ${response.status}`);
  const config = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
  if (config.issuer !== issuer) throw new Error('OpenID configuration names another issuer');
  if (typeof config.jwks_uri !== 'string') throw new Error('OpenID configuration has no jwks_uri');
  const jwksUri = new URL(config.jwks_uri);
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(jwksUri.hostname);
  if (jwksUri.protocol !== 'https:' && !loopback) throw new Error('jwks_uri is not https');
  return remoteKeys(jwksUri);
}

function remoteKeys(uri: URL): RemoteJWKSet {
  return createRemoteJWKSet(uri, {
    timeoutDuration: FETCH_TIMEOUT_MS,
    cooldownDuration: 30_000,
    cacheMaxAge: 600_000,
  });
}

/** Bad tokens are 401; a key set that cannot be fetched is the bridge's trouble, 503. */
function tokenError(err: unknown): BridgeError {
  if (
    err instanceof joseErrors.JWKSTimeout ||
    err instanceof joseErrors.JWKSInvalid ||
    !(err instanceof joseErrors.JOSEError)
  ) {
    return unavailable();
  }
  if (err instanceof joseErrors.JWTExpired)
    return unauthorized('The bearer token has expired.', 'invalid_token');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return unauthorized(`The bearer token's "${err.claim}" claim is not accepted.`, 'invalid_token');
  }
  return unauthorized('The bearer token is not valid.', 'invalid_token');
}

function unauthorized(message: string, error: string | undefined): BridgeError {
  const challenge = error ? `Bearer error="${error}"` : 'Bearer';
  return new BridgeError('Unauthorized', message, { 'www-authenticate': challenge });
}

function unavailable(): BridgeError {
  return new BridgeError(
    'AuthUnavailable',
    "The identity provider's signing keys could not be fetched; try again shortly.",
    { 'retry-after': '5' },
  );
}
