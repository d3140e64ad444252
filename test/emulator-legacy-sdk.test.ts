import { readFile } from 'node:fs/promises';
import { Agent } from 'node:https';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../src/emulator/server.js';

// The legacy `documentdb` SDK 1.15 (the last with attachments), over HTTPS as it only speaks, through
// the steps of its own "Validate Attachment CRUD" tests (test/test.js in its package), name-based and
// rid-based, with and without upsert, in a plain and in a partitioned collection.

type Callback = (
  err: { code: number; body: string } | undefined,
  result: unknown,
  headers: Record<string, string>,
) => void;
type Resource = Record<string, unknown> & { id: string; _self: string; _rid: string; media: string };
interface LegacyClient {
  requestAgent: Agent;
  connectionPolicy: { MediaReadMode: string };
  [method: string]: unknown;
}
const require = createRequire(import.meta.url);
const documentdb = require('documentdb') as {
  DocumentClient: new (host: string, auth: { masterKey: string }) => LegacyClient;
  DocumentBase: { MediaReadMode: { Buffered: string; Streamed: string } };
};

let emulator: Emulator;
let ca: string;

beforeAll(async () => {
  emulator = await startEmulator({ port: 0 });
  ca = await readFile(emulator.certPath!, 'utf8');
});
afterAll(() => emulator.close());

/** A client as the SDK makes it, with an agent that trusts the emulator's certificate. */
function legacyClient(): LegacyClient {
  const client = new documentdb.DocumentClient(emulator.httpsUrl!, { masterKey: emulator.key });
  // The SDK asks for TLS 1.0 on every request; OpenSSL 3 allows that only at security level 0.
  client.requestAgent = new Agent({ keepAlive: true, ca, ciphers: 'DEFAULT:@SECLEVEL=0' });
  return client;
}

/** Calls a callback-style SDK method; rejects with the SDK's error (`{code, body}`). */
function call<T = Resource>(client: LegacyClient, method: string, ...args: unknown[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const callback: Callback = (err, result) => (err ? reject(sdkError(err)) : resolve(result as T));
    (client[method] as (...a: unknown[]) => void).apply(client, [...args, callback]);
  });
}

/** The SDK's error (`{code, body}`) as an Error that keeps both. */
function sdkError(err: { code: number; body: string }): Error {
  return Object.assign(new Error(`${err.code}: ${err.body}`), err);
}

function feed(client: LegacyClient, method: string, ...args: unknown[]): Promise<Resource[]> {
  return new Promise((resolve, reject) => {
    const iterator = (client[method] as (...a: unknown[]) => { toArray(cb: Callback): void }).apply(
      client,
      args,
    );
    iterator.toArray((err, result) => (err ? reject(sdkError(err)) : resolve(result as Resource[])));
  });
}

function chunks(first = 'first chunk ', second = 'second chunk'): Readable {
  return Readable.from([Buffer.from(first), Buffer.from(second)]);
}

async function text(stream: Readable): Promise<string> {
  let all = '';
  for await (const chunk of stream) all += String(chunk);
  return all;
}

describe.each([
  { nameBased: true, upsert: false, partitioned: false },
  { nameBased: false, upsert: false, partitioned: false },
  { nameBased: true, upsert: true, partitioned: false },
  { nameBased: false, upsert: true, partitioned: true },
  { nameBased: true, upsert: false, partitioned: true },
])('documentdb 1.15 attachment CRUD (%o)', ({ nameBased, upsert, partitioned }) => {
  it('creates both ways, reads, replaces, streams and updates media, queries and deletes', async () => {
    const client = legacyClient();
    const dbId = `legacy ${String(nameBased)} ${String(upsert)} ${String(partitioned)}`;
    const db = await call(client, 'createDatabase', { id: dbId });
    const collectionBody = partitioned
      ? { id: 'coll1', partitionKey: { paths: ['/id'], kind: 'Hash' } }
      : { id: 'sample collection' };
    const dbLink = nameBased ? `dbs/${dbId}` : db._self;
    const collection = await call(client, 'createCollection', dbLink, collectionBody, {
      offerThroughput: 12000,
    });
    const collLink = nameBased ? `${dbLink}/colls/${collection.id}` : collection._self;
    const document = await call(client, 'createDocument', collLink, { id: 'sample document', foo: 'bar' });
    const docLink = nameBased ? `${collLink}/docs/${document.id}` : document._self;
    const pk = partitioned ? { partitionKey: document.id } : {};
    const attLink = (att: Resource) => (nameBased ? `${docLink}/attachments/${att.id}` : att._self);
    const createMedia = upsert ? 'upsertAttachmentAndUploadMedia' : 'createAttachmentAndUploadMedia';
    const createJson = upsert ? 'upsertAttachment' : 'createAttachment';

    expect(await feed(client, 'readAttachments', docLink, pk)).toEqual([]);
    const valid = { slug: 'attachment name', contentType: 'application/text', ...pk };

    await expect(
      call(client, createMedia, docLink, chunks(), { ...valid, contentType: 'junt/test' }),
    ).rejects.toMatchObject({ code: 400 });
    const managed = await call(client, createMedia, docLink, chunks(), valid);
    expect(managed.id).toBe('attachment name');
    await expect(
      call(client, 'createAttachmentAndUploadMedia', docLink, chunks(), valid),
    ).rejects.toMatchObject({
      code: 409,
    });

    const dynamic = await call(
      client,
      createJson,
      docLink,
      {
        id: 'dynamic attachment',
        media: 'http://xstore.',
        MediaType: 'Book',
        Author: 'My Book Author',
        contentType: 'application/text',
      },
      pk,
    );
    expect(dynamic).toMatchObject({ MediaType: 'Book', Author: 'My Book Author' });
    expect(await feed(client, 'readAttachments', docLink, pk)).toHaveLength(2);

    dynamic.Author = 'new author';
    const replaced = upsert
      ? await call(client, 'upsertAttachment', docLink, dynamic, pk)
      : await call(client, 'replaceAttachment', attLink(dynamic), dynamic, pk);
    expect(replaced).toMatchObject({ MediaType: 'Book', Author: 'new author' });
    expect(replaced._etag).not.toBe(dynamic._etag);

    expect(await call<string>(client, 'readMedia', managed.media)).toBe('first chunk second chunk');
    await call(
      client,
      'updateMedia',
      managed.media,
      chunks('modified first chunk ', 'modified second chunk'),
      valid,
    );
    expect(await call<string>(client, 'readMedia', managed.media)).toBe(
      'modified first chunk modified second chunk',
    );
    client.connectionPolicy.MediaReadMode = documentdb.DocumentBase.MediaReadMode.Streamed;
    expect(await text(await call<Readable>(client, 'readMedia', managed.media))).toBe(
      'modified first chunk modified second chunk',
    );

    const found = await feed(
      client,
      'queryAttachments',
      docLink,
      {
        query: 'SELECT * FROM a WHERE a.Author = @author',
        parameters: [{ name: '@author', value: 'new author' }],
      },
      pk,
    );
    expect(found.map((att) => att.id)).toEqual(['dynamic attachment']);

    // Share the managed media with a second document, then delete the first document's attachment.
    const second = await call(client, 'createDocument', collLink, { id: 'document 2' });
    const secondLink = nameBased ? `${collLink}/docs/${second.id}` : second._self;
    const secondPk = partitioned ? { partitionKey: second.id } : {};
    const shared = await call(
      client,
      createJson,
      secondLink,
      { id: managed.id, contentType: managed.contentType, media: managed.media },
      secondPk,
    );
    expect(shared).toMatchObject({ id: managed.id, media: managed.media, contentType: 'application/text' });
    await call(client, 'deleteAttachment', attLink(managed), pk);
    await expect(call(client, 'readAttachment', attLink(managed), pk)).rejects.toMatchObject({ code: 404 });
    const kept = await call(
      client,
      'readAttachment',
      nameBased ? `${secondLink}/attachments/${shared.id}` : shared._self,
      secondPk,
    );
    expect(kept.media).toBe(managed.media);
    await call(client, 'deleteDatabase', db._self);
  });
});
