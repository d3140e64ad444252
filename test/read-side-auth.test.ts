import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIENCE, startIdentityProvider, type IdentityProvider } from './helpers/identity-provider.js';
import { json, startStack, type Stack } from './helpers/stack.js';

/**
 * Reads under end-user sign-in: the same rules as writes. With AUTH_PARTITION_CLAIM a signed-in user
 * reads, lists, replaces and deletes only in its own partition; ALLOWED_TARGETS bounds reads too.
 */
let idp: IdentityProvider;
let stack: Stack;

beforeAll(async () => {
  idp = await startIdentityProvider();
  stack = await startStack({
    env: {
      AUTH_JWT_ISSUER: idp.issuer,
      AUTH_JWT_AUDIENCE: AUDIENCE,
      AUTH_PARTITION_CLAIM: 'sub',
      ALLOWED_TARGETS: 'demo/items',
    },
    docs: ['user-1', 'user-2'],
  });
});
afterAll(async () => {
  await stack.close();
  await idp.close();
});

const bearer = async (sub: string) => ({ authorization: `Bearer ${await idp.token({ sub })}` });

async function put(doc: string, id: string, sub: string): Promise<void> {
  const form = new FormData();
  form.append('file', new Blob([`${sub}'s bytes`], { type: 'image/png' }), id);
  const response = await fetch(stack.route(doc), { method: 'POST', headers: await bearer(sub), body: form });
  expect(response.status).toBe(201);
}

describe('reads under AUTH_PARTITION_CLAIM', () => {
  it('lets a user list, read and download in its own partition, the claim standing in for the key', async () => {
    await put('user-1', 'mine.png', 'user-1');
    const headers = await bearer('user-1');
    const list = await fetch(stack.route('user-1'), { headers });
    expect(list.status).toBe(200);
    expect(((await list.json()) as { Attachments: { id: string }[] }).Attachments.map((a) => a.id)).toContain(
      'mine.png',
    );
    expect((await fetch(`${stack.route('user-1')}/mine.png`, { headers })).status).toBe(200);
    const download = await fetch(`${stack.route('user-1')}/mine.png/media`, { headers });
    expect(await download.text()).toBe("user-1's bytes");
    expect(stack.requests.at(-1)!.path).toMatch(/^\/media\//);
  });

  it("refuses with 403, before any upstream call, every read, replace and delete in another user's partition", async () => {
    await put('user-2', 'theirs.png', 'user-2');
    const headers = await bearer('user-1');
    const before = stack.requests.length;
    const attempts: [string, string, Record<string, string>, string?][] = [
      ['GET', stack.route('user-2'), { 'x-ms-documentdb-partitionkey': '["user-2"]' }],
      ['GET', `${stack.route('user-2')}?partitionKey=user-2`, {}],
      ['GET', `${stack.route('user-2')}/theirs.png`, { 'x-ms-documentdb-partitionkey': '["user-2"]' }],
      ['HEAD', `${stack.route('user-2')}/theirs.png/media?partitionKey=user-2`, {}],
      ['GET', `${stack.route('user-2')}/theirs.png/media?partitionKey=%5B%22user-2%22%5D`, {}],
      ['DELETE', `${stack.route('user-2')}/theirs.png`, { 'x-ms-documentdb-partitionkey': '["user-2"]' }],
      [
        'PUT',
        `${stack.route('user-2')}/theirs.png`,
        { 'x-ms-documentdb-partitionkey': '["user-2"]', 'content-type': 'image/png' },
        'x',
      ],
    ];
    for (const [method, url, extra, body] of attempts) {
      const response = await fetch(url, { method, headers: { ...headers, ...extra }, body: body ?? null });
      expect(response.status, `${method} ${url}`).toBe(403);
      if (method !== 'HEAD') expect(await json(response)).toMatchObject({ code: 'Forbidden' });
    }
    expect(stack.requests.length).toBe(before);
    // With no partition key named, the claim's own is used: the other user's document is not in it.
    const own = await fetch(`${stack.route('user-2')}/theirs.png/media`, { headers });
    expect(own.status).toBe(404);
    expect(stack.requests.at(-1)!.headers['x-ms-documentdb-partitionkey']).toBe('["user-1"]');
    // And it is all still there for its owner.
    expect(
      await (
        await fetch(`${stack.route('user-2')}/theirs.png/media`, { headers: await bearer('user-2') })
      ).text(),
    ).toBe("user-2's bytes");
  });

  it('refuses reads outside ALLOWED_TARGETS, and callers with no credential', async () => {
    const headers = await bearer('user-1');
    const other = await fetch(stack.route('user-1').replace('/colls/items/', '/colls/secret/'), { headers });
    expect(other.status).toBe(403);
    expect((await fetch(`${stack.route('user-1')}/mine.png/media`)).status).toBe(401);
  });
});
