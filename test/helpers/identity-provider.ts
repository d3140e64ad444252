import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { closeServer, listen } from '../../src/http/listening.js';
import { recordSecret } from './scrape.js';

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

/** A local OpenID provider: discovery document, JWKS, and tokens signed with its current key. */
export interface IdentityProvider {
  issuer: string;
  jwksUri: string;
  /** JWKS downloads so far (to see caching and refresh). */
  jwksFetches(): number;
  /** Signs a token; `iss`, `aud` (unless given), `iat` and a 5 minute `exp` are filled in. */
  token(
    claims: JWTPayload,
    options?: { audience?: string; issuer?: string; expiresAt?: number | null; notBefore?: number },
  ): Promise<string>;
  /** Starts signing with a new key, published alongside the old ones. */
  rotate(): Promise<void>;
  /** While down, every request is answered 500. */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

export const AUDIENCE = 'api://attachment-bridge';

export async function startIdentityProvider(): Promise<IdentityProvider> {
  const keys: SigningKey[] = [await newKey()];
  let fetches = 0;
  let down = false;
  const server: Server = createServer((req, res) => {
    if (down) {
      res.writeHead(500).end();
      return;
    }
    if (req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer, jwks_uri: jwksUri }));
    } else if (req.url === '/jwks') {
      fetches += 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: keys.map((key) => key.jwk) }));
    } else {
      res.writeHead(404).end();
    }
  });
  await listen(server, 0, '127.0.0.1');
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = `${base}/`;
  const jwksUri = `${base}/jwks`;
  return {
    issuer,
    jwksUri,
    jwksFetches: () => fetches,
    async token(claims, options = {}) {
      const key = keys.at(-1)!;
      const now = Math.floor(Date.now() / 1000);
      const jwt = new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: key.kid })
        .setIssuer(options.issuer ?? issuer)
        .setAudience(options.audience ?? AUDIENCE)
        .setIssuedAt(now);
      // `expiresAt: null` leaves `exp` out.
      if (options.expiresAt !== null) jwt.setExpirationTime(options.expiresAt ?? now + 300);
      if (options.notBefore !== undefined) jwt.setNotBefore(options.notBefore);
      const token = await jwt.sign(key.privateKey);
      recordSecret(token);
      return token;
    },
    async rotate() {
      keys.push(await newKey());
    },
    setDown(value) {
      down = value;
    },
    close: () => closeServer(server),
  };
}

async function newKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomUUID();
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}
