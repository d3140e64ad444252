import { createSecretKey, randomBytes } from 'node:crypto';
import { setAuthorizationTokenHeaderUsingMasterKey } from '@azure/cosmos';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mediaResourceLink } from '../src/cosmos/ids.js';
import { masterKeyAuthorization, stringToSign } from '../src/cosmos/signer.js';
import { verifyMasterKey } from '../src/emulator/auth.js';

type CosmosResourceType = Parameters<typeof setAuthorizationTokenHeaderUsingMasterKey>[2];
type CosmosVerb = Parameters<typeof setAuthorizationTokenHeaderUsingMasterKey>[0];

const keyOf = (base64: string) => createSecretKey(Buffer.from(base64, 'base64'));

describe('master-key signer', () => {
  it('reproduces the published example from the Cosmos DB access-control docs', () => {
    const header = masterKeyAuthorization(
      keyOf('dsZQi3KtZmCv1ljt3VNWNm7sQUF1y5rJfC6kv5JiwvW0EndXdDku/dkKBp8/ufDToSxLzR4y+O/0H/t4bQtVNw=='),
      {
        verb: 'GET',
        resourceType: 'dbs',
        resourceLink: 'dbs/ToDoList',
        date: 'Thu, 27 Apr 2017 00:51:12 GMT',
      },
    );
    expect(decodeURIComponent(header)).toBe(
      decodeURIComponent(
        'type%3dmaster%26ver%3d1.0%26sig%3dc09PEVJrgp2uQRkr934kFbTqhByc7TVr3OHyqlu%2bc%2bc%3d',
      ),
    );
  });

  it('lowercases verb, type and date but keeps the resource link as it is', () => {
    expect(
      stringToSign({
        verb: 'POST',
        resourceType: 'Attachments',
        resourceLink: 'dbs/A/colls/B',
        date: 'Thu, 01 Jan 2026 GMT',
      }),
    ).toBe('post\nattachments\ndbs/A/colls/B\nthu, 01 jan 2026 gmt\n\n');
  });

  it('matches @azure/cosmos for random verbs, types, links and keys', async () => {
    const idChars = fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 12 })
      .filter((s) => !s.includes('/'));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
        fc.constantFrom('dbs', 'colls', 'docs', 'attachments', 'media'),
        fc.array(idChars, { minLength: 1, maxLength: 4 }),
        fc.uint8Array({ minLength: 32, maxLength: 64 }),
        async (verb, resourceType, ids, keyBytes) => {
          const key = Buffer.from(keyBytes).toString('base64');
          const resourceLink = ids.map((id, i) => `seg${i}/${id}`).join('/');
          const headers: Record<string, string> = {};
          await setAuthorizationTokenHeaderUsingMasterKey(
            verb as CosmosVerb,
            resourceLink,
            resourceType as CosmosResourceType,
            headers,
            key,
          );
          const date = headers['x-ms-date']!;
          const ours = masterKeyAuthorization(keyOf(key), { verb, resourceType, resourceLink, date });
          expect(decodeURIComponent(ours)).toBe(decodeURIComponent(headers.authorization!));
          // The emulator accepts what the official SDK signs...
          const now = Date.parse(date);
          expect(
            verifyMasterKey(
              keyOf(key),
              headers.authorization,
              date,
              { verb, resourceType, resourceLink },
              now,
            ),
          ).toEqual({
            ok: true,
          });
          // ...and refuses it for any other link.
          const other = verifyMasterKey(
            keyOf(key),
            headers.authorization,
            date,
            {
              verb,
              resourceType,
              resourceLink: `${resourceLink}x`,
            },
            now,
          );
          expect(other.ok).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('media resource link', () => {
  it("is the attachment _rid of the List Attachments docs' example media id, lowercased", () => {
    // Docs: `_rid` "Sl8fALN4sw4CAAAAAAAAAOo3S2U=" has media "/media/Sl8fALN4sw4CAAAAAAAAAOo3S2UB".
    expect(mediaResourceLink('Sl8fALN4sw4CAAAAAAAAAOo3S2UB')).toBe(
      'Sl8fALN4sw4CAAAAAAAAAOo3S2U='.toLowerCase(),
    );
  });

  it('writes "/" as "-" on both sides', () => {
    const rid = Buffer.alloc(20, 0xff); // base64 of 0xff bytes is all "/"
    const mediaId = Buffer.concat([rid, Buffer.from([1])])
      .toString('base64')
      .replace(/\//g, '-');
    expect(mediaResourceLink(mediaId)).toBe(rid.toString('base64').replace(/\//g, '-'));
  });
});

describe('emulator signature check', () => {
  const key = randomBytes(64).toString('base64');
  const date = new Date().toUTCString();
  const request = { verb: 'GET', resourceType: 'docs', resourceLink: 'dbs/a/colls/b/docs/c' };
  const valid = masterKeyAuthorization(keyOf(key), { ...request, date });

  it('accepts a valid token and upper- or lower-case escapes alike', () => {
    expect(verifyMasterKey(keyOf(key), valid, date, request).ok).toBe(true);
    const lowerEscapes = valid.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase());
    expect(lowerEscapes).not.toBe(valid);
    expect(verifyMasterKey(keyOf(key), lowerEscapes, date, request).ok).toBe(true);
  });

  it('answers 401 for a wrong key, a missing header or a malformed token', () => {
    const wrongKey = keyOf(randomBytes(64).toString('base64'));
    expect(verifyMasterKey(wrongKey, valid, date, request)).toMatchObject({ ok: false, status: 401 });
    expect(verifyMasterKey(keyOf(key), undefined, date, request)).toMatchObject({ ok: false, status: 401 });
    expect(
      verifyMasterKey(keyOf(key), 'type%3Dresource%26ver%3D1.0%26sig%3Dabc', date, request),
    ).toMatchObject({
      ok: false,
      status: 401,
    });
    expect(verifyMasterKey(keyOf(key), valid, 'yesterday', request)).toMatchObject({
      ok: false,
      status: 401,
    });
    expect(verifyMasterKey(keyOf(key), valid, undefined, request)).toMatchObject({ ok: false, status: 401 });
  });

  it('answers 403 when x-ms-date is more than 15 minutes off, either way', () => {
    const now = Date.parse(date);
    const minutes = (m: number) => m * 60 * 1000;
    expect(verifyMasterKey(keyOf(key), valid, date, request, now + minutes(14)).ok).toBe(true);
    expect(verifyMasterKey(keyOf(key), valid, date, request, now - minutes(14)).ok).toBe(true);
    expect(verifyMasterKey(keyOf(key), valid, date, request, now + minutes(16))).toMatchObject({
      status: 403,
    });
    expect(verifyMasterKey(keyOf(key), valid, date, request, now - minutes(16))).toMatchObject({
      status: 403,
    });
  });

  it('never puts the key in its messages', () => {
    const result = verifyMasterKey(keyOf(randomBytes(64).toString('base64')), valid, date, request);
    expect(result.ok).toBe(false);
    expect(JSON.stringify(result)).not.toContain(key);
  });
});
