import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIENCE, startIdentityProvider, type IdentityProvider } from './helpers/identity-provider.js';
import { recordSecret } from './helpers/scrape.js';
import { FUNCTION_KEY, json, startStack, type Stack } from './helpers/stack.js';

let idp: IdentityProvider;
let stack: Stack;

beforeAll(async () => {
  idp = await startIdentityProvider();
  stack = await startStack({
    env: {
      AUTH_JWT_ISSUER: idp.issuer,
      AUTH_JWT_AUDIENCE: AUDIENCE,
      AUTH_PARTITION_CLAIM: 'sub',
      ALLOWED_TARGETS: 'demo/items, archive/*',
      ALLOWED_CONTENT_TYPES: 'image/*, application/pdf',
    },
    docs: ['user-1', 'user-2'],
  });
});
afterAll(async () => {
  await stack.close();
  await idp.close();
});

function upload(
  doc: string,
  headers: Record<string, string>,
  file = { name: `p${Math.random()}.png`, type: 'image/png' },
) {
  const form = new FormData();
  form.append('file', new Blob(['png bytes'], { type: file.type }), file.name);
  return fetch(stack.route(doc), { method: 'POST', headers, body: form });
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Upstream requests the emulator saw for one document's attachments. */
function upstreamFor(doc: string) {
  return stack.requests.filter((r) => r.path.includes(`/docs/${doc}/attachments`));
}

describe('OIDC bearer tokens', () => {
  it('accepts a valid token, found through the issuer discovery document', async () => {
    const token = await idp.token({ sub: 'user-1' });
    const response = await upload('user-1', bearer(token));
    expect(response.status).toBe(201);
  });

  it('writes under the caller partition claim when the caller names no partition key', async () => {
    const token = await idp.token({ sub: 'user-1' });
    expect((await upload('user-1', bearer(token))).status).toBe(201);
    expect(upstreamFor('user-1').at(-1)!.headers['x-ms-documentdb-partitionkey']).toBe('["user-1"]');
  });

  it("refuses with 403, before any upstream call, a partition key that is not the caller's own", async () => {
    const token = await idp.token({ sub: 'user-1' });
    const before = upstreamFor('user-2').length;
    const viaHeader = await upload('user-2', {
      ...bearer(token),
      'x-ms-documentdb-partitionkey': '["user-2"]',
    });
    expect(viaHeader.status).toBe(403);
    expect(await json(viaHeader)).toMatchObject({ code: 'Forbidden' });
    const form = new FormData();
    form.append('partitionKey', 'user-2');
    form.append('file', new Blob(['x'], { type: 'image/png' }), 'x.png');
    const viaField = await fetch(stack.route('user-2'), {
      method: 'POST',
      headers: bearer(token),
      body: form,
    });
    expect(viaField.status).toBe(403);
    expect(upstreamFor('user-2').length).toBe(before);
    expect(await stack.listAttachments('user-2')).toEqual([]);
  });

  it("cannot reach another user's document through its own partition", async () => {
    const token = await idp.token({ sub: 'user-1' });
    const response = await upload('user-2', bearer(token));
    expect(response.status).toBe(404);
    expect(await stack.listAttachments('user-2')).toEqual([]);
  });

  it('answers 403 for a caller without the partition claim', async () => {
    const token = await idp.token({ name: 'no subject' });
    expect((await upload('user-1', bearer(token))).status).toBe(403);
  });

  it('answers 401 with a Bearer challenge without a token, and ignores function keys', async () => {
    const none = await upload('user-1', {});
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    const key = await upload('user-1', { 'x-functions-key': FUNCTION_KEY });
    expect(key.status).toBe(401);
  });

  it.each([
    ['expired two minutes ago', { expiresAt: Math.floor(Date.now() / 1000) - 120 }, /expired/],
    ['not valid for two more minutes', { notBefore: Math.floor(Date.now() / 1000) + 120 }, /nbf/],
    ['for another audience', { audience: 'api://someone-else' }, /aud/],
    ['from another issuer', { issuer: 'https://evil.example/' }, /iss/],
    ['that never expires', { expiresAt: null }, /exp/],
  ])('refuses a token %s', async (_what, options, message) => {
    const token = await idp.token({ sub: 'user-1' }, options);
    const response = await upload('user-1', bearer(token));
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect((await json(response)).message).toMatch(message);
  });

  it('tolerates a little clock skew', async () => {
    const token = await idp.token({ sub: 'user-1' }, { expiresAt: Math.floor(Date.now() / 1000) - 5 });
    expect((await upload('user-1', bearer(token))).status).toBe(201);
  });

  it('refuses tokens signed with an unpublished key or a shared secret', async () => {
    const stranger = await startIdentityProvider();
    try {
      const foreign = await stranger.token({ sub: 'user-1' }, { issuer: idp.issuer });
      expect((await upload('user-1', bearer(foreign))).status).toBe(401);
    } finally {
      await stranger.close();
    }
    const hs256 = await new SignJWT({ sub: 'user-1' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(idp.issuer)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode('a-shared-secret-a-shared-secret!'));
    recordSecret(hs256);
    expect((await upload('user-1', bearer(hs256))).status).toBe(401);
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(
      JSON.stringify({ sub: 'user-1', iss: idp.issuer, aud: AUDIENCE, exp: 9999999999 }),
    ).toString('base64url')}.`;
    expect((await upload('user-1', bearer(unsigned))).status).toBe(401);
  });

  it('caches the key set, and fetches it again at once for a token with an unknown key id', async () => {
    // Its own provider and bridge, so no other test's key fetches count.
    const rotating = await startIdentityProvider();
    const other = await startStack({
      env: {
        AUTH_JWT_ISSUER: rotating.issuer,
        AUTH_JWT_AUDIENCE: AUDIENCE,
        AUTH_JWT_JWKS_URI: rotating.jwksUri,
        ALLOWED_TARGETS: '*/*',
      },
    });
    const send = async (token: string) => {
      const response = await fetch(other.route(), {
        method: 'POST',
        headers: {
          ...bearer(token),
          'x-ms-documentdb-partitionkey': '["welcome"]',
          'content-type': 'application/json',
        },
        body: JSON.stringify({ id: `k${Math.random()}`, contentType: 'image/png', media: 'https://x' }),
      });
      return response.status;
    };
    try {
      const token = await rotating.token({ sub: 'welcome' });
      expect(await send(token)).toBe(201);
      expect(await send(token)).toBe(201);
      expect(rotating.jwksFetches()).toBe(1);
      await rotating.rotate();
      expect(await send(await rotating.token({ sub: 'welcome' }))).toBe(201);
      expect(rotating.jwksFetches()).toBe(2);
      // Another unknown key id straight after: refused without hammering the provider.
      const stranger = await startIdentityProvider();
      expect(await send(await stranger.token({ sub: 'welcome' }, { issuer: rotating.issuer }))).toBe(401);
      expect(rotating.jwksFetches()).toBe(2);
      await stranger.close();
    } finally {
      await other.close();
      await rotating.close();
    }
  });
});

describe('ALLOWED_TARGETS and ALLOWED_CONTENT_TYPES', () => {
  it('answers 403 for a collection outside ALLOWED_TARGETS, before any upstream call', async () => {
    const token = await idp.token({ sub: 'user-1' });
    const before = stack.requests.length;
    const response = await fetch(`${stack.host.url}/api/dbs/demo/colls/secrets/docs/user-1/attachments`, {
      method: 'POST',
      headers: { ...bearer(token), 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'x', contentType: 'image/png', media: 'https://x' }),
    });
    expect(response.status).toBe(403);
    expect(await json(response)).toMatchObject({
      code: 'Forbidden',
      message: expect.stringMatching(/ALLOWED_TARGETS/) as string,
    });
    expect(stack.requests.length).toBe(before);
  });

  it('answers 415 for a content type outside ALLOWED_CONTENT_TYPES, keeping nothing of the request', async () => {
    const token = await idp.token({ sub: 'user-1' });
    const before = (await stack.listAttachments('user-1')).length;
    const form = new FormData();
    form.append('ok', new Blob(['%PDF'], { type: 'application/pdf' }), 'fine.pdf');
    form.append('bad', new Blob(['#!/bin/sh'], { type: 'text/x-shellscript' }), 'run.sh');
    const response = await fetch(stack.route('user-1'), {
      method: 'POST',
      headers: bearer(token),
      body: form,
    });
    expect(response.status).toBe(415);
    expect((await json(response)).message).toMatch(/text\/x-shellscript/);
    expect((await stack.listAttachments('user-1')).length).toBe(before);
    const metadata = await fetch(stack.route('user-1'), {
      method: 'POST',
      headers: { ...bearer(token), 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'm', contentType: 'text/html', media: 'https://x' }),
    });
    expect(metadata.status).toBe(415);
  });

  it('refuses a large part of a refused type cleanly, and serves the next request', async () => {
    const token = await idp.token({ sub: 'user-1' });
    const before = (await stack.listAttachments('user-1')).length;
    const form = new FormData();
    form.append('bad', new Blob([Buffer.alloc(1024 * 1024, 1)], { type: 'video/mp4' }), 'clip.mp4');
    const response = await fetch(stack.route('user-1'), {
      method: 'POST',
      headers: bearer(token),
      body: form,
    });
    expect(response.status).toBe(415);
    expect((await json(response)).message).toMatch(/video\/mp4/);
    expect((await stack.listAttachments('user-1')).length).toBe(before);
    expect((await upload('user-1', bearer(token))).status).toBe(201);
  });
});

describe('identity provider outage', () => {
  it('answers 503 with Retry-After when the signing keys cannot be fetched', async () => {
    const downIdp = await startIdentityProvider();
    downIdp.setDown(true);
    const other = await startStack({
      env: { AUTH_JWT_ISSUER: downIdp.issuer, AUTH_JWT_AUDIENCE: AUDIENCE, ALLOWED_TARGETS: '*/*' },
    });
    try {
      const token = await downIdp.token({ sub: 'welcome' });
      const form = new FormData();
      form.append('file', new Blob(['x']), 'x.bin');
      const response = await fetch(other.route(), {
        method: 'POST',
        headers: { ...bearer(token), 'x-ms-documentdb-partitionkey': '["welcome"]' },
        body: form,
      });
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBeTruthy();
      expect(await json(response)).toMatchObject({ code: 'AuthUnavailable' });
    } finally {
      await other.close();
      await downIdp.close();
    }
  });
});

describe('App Service Authentication (Easy Auth)', () => {
  const NAME_ID = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier';
  let easy: Stack;
  beforeAll(async () => {
    easy = await startStack({
      env: { AUTH_EASY_AUTH: 'true', AUTH_PARTITION_CLAIM: NAME_ID, ALLOWED_TARGETS: 'demo/*' },
      docs: ['aad-user'],
    });
  });
  afterAll(() => easy.close());

  const principal = (claims: { typ: string; val: string }[]) =>
    Buffer.from(JSON.stringify({ auth_typ: 'aad', name_typ: 'name', role_typ: 'roles', claims })).toString(
      'base64',
    );

  function post(headers: Record<string, string>) {
    return fetch(easy.route('aad-user'), {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ id: `a${Math.random()}`, contentType: 'image/png', media: 'https://x' }),
    });
  }

  it('accepts the principal the platform injects, writing under its claim', async () => {
    const response = await post({ 'x-ms-client-principal': principal([{ typ: NAME_ID, val: 'aad-user' }]) });
    expect(response.status).toBe(201);
  });

  it('answers 401 without a principal or with a malformed one, and 403 for another partition', async () => {
    expect((await post({})).status).toBe(401);
    expect((await post({ 'x-ms-client-principal': 'not base64 json' })).status).toBe(401);
    const other = await post({
      'x-ms-client-principal': principal([{ typ: NAME_ID, val: 'aad-user' }]),
      'x-ms-documentdb-partitionkey': '["someone"]',
    });
    expect(other.status).toBe(403);
  });
});
