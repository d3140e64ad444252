import { createHmac, randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, startStack, type Stack } from './helpers/stack.js';

const OLD_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const NEW_SECRET = 'whsec_c2VjcmV0LXNlY29uZC0xMjM0NTY3ODkw';
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    env: { WEBHOOK_SECRET: `${OLD_SECRET} ${NEW_SECRET}`, ALLOWED_TARGETS: 'demo/items' },
    docs: ['hook', 'hook-q', 'hook-race'],
  });
});
afterAll(() => stack.close());

/** Standard Webhooks v1, written out from the spec (an independent check of the library's verifier). */
function sign(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

function deliver(
  doc: string,
  body: string,
  options: {
    id?: string;
    timestamp?: number;
    signature?: string;
    secret?: string;
    query?: string;
    headers?: Record<string, string>;
  } = {},
) {
  const id = options.id ?? `msg_${randomUUID()}`;
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const signature = options.signature ?? sign(options.secret ?? NEW_SECRET, id, timestamp, body);
  const url = `${stack.host.url}/api/webhooks/dbs/demo/colls/items/docs/${doc}/attachments${options.query ?? ''}`;
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signature,
      ...(options.query ? {} : { 'x-ms-documentdb-partitionkey': JSON.stringify([doc]) }),
      ...options.headers,
    },
    body,
  });
}

const announce = (id: string) =>
  JSON.stringify({ id, contentType: 'video/mp4', media: `https://media.example/${id}.mp4`, durationS: 31.5 });

describe('webhook deliveries', () => {
  it('creates a metadata attachment from a signed delivery, recording its webhook-id', async () => {
    const response = await deliver('hook', announce('clip-1'), { id: 'msg_first' });
    expect(response.status).toBe(201);
    expect(await json(response)).toMatchObject({
      id: 'clip-1',
      media: 'https://media.example/clip-1.mp4',
      durationS: 31.5,
      webhookId: 'msg_first',
    });
  });

  it('answers a redelivery with the first outcome instead of a 409, without a second attachment', async () => {
    const first = await deliver('hook', announce('clip-2'), { id: 'msg_again' });
    expect(first.status).toBe(201);
    const firstBody = await json(first);
    const again = await deliver('hook', announce('clip-2'), { id: 'msg_again' });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    // The same attachment, now marked as the redelivery's own (so no clean-up of the first can remove it).
    const againBody = await json(again);
    for (const name of ['id', 'media', 'contentType', 'webhookId', '_rid'])
      expect(againBody[name]).toEqual(firstBody[name]);
    expect(againBody.bridgeUploadId).not.toEqual(firstBody.bridgeUploadId);
    expect((await stack.listAttachments('hook')).filter((a) => a.id === 'clip-2')).toHaveLength(1);
  });

  it('still answers 409 when a different delivery names a taken attachment id', async () => {
    expect((await deliver('hook', announce('clip-3'))).status).toBe(201);
    const other = await deliver('hook', announce('clip-3'));
    expect(other.status).toBe(409);
  });

  it('gives concurrent redeliveries one attachment and a 2xx each', async () => {
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => deliver('hook-race', announce('raced'), { id: 'msg_race' })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(8).fill(201));
    expect((await stack.listAttachments('hook-race')).map((a) => a.id)).toEqual(['raced']);
  });

  it('accepts either secret during rotation, and any one of several signatures', async () => {
    expect((await deliver('hook', announce('old-secret'), { secret: OLD_SECRET })).status).toBe(201);
    const id = 'msg_multi';
    const timestamp = Math.floor(Date.now() / 1000);
    const body = announce('multi-sig');
    const signature = `v1,Zm9vYmFy ${sign(NEW_SECRET, id, timestamp, body)} v2,whatever`;
    expect((await deliver('hook', body, { id, timestamp, signature })).status).toBe(201);
  });

  it('accepts what the standardwebhooks library signs', async () => {
    const id = 'msg_lib';
    const timestamp = new Date();
    const body = announce('library');
    const signature = new Webhook(NEW_SECRET).sign(id, timestamp, body);
    expect(
      (await deliver('hook', body, { id, timestamp: Math.floor(timestamp.getTime() / 1000), signature }))
        .status,
    ).toBe(201);
  });

  it('takes the partition key from ?partitionKey=', async () => {
    expect((await deliver('hook-q', announce('via-query'), { query: '?partitionKey=hook-q' })).status).toBe(
      201,
    );
    expect((await stack.listAttachments('hook-q')).map((a) => a.id)).toEqual(['via-query']);
  });
});

describe('refused deliveries', () => {
  it.each([
    [
      'a wrong signature',
      { signature: 'v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' },
      /No matching signature/,
    ],
    ['an unknown secret', { secret: 'whsec_dGhpcy1pcy1ub3QtdGhlLXNlY3JldA==' }, /No matching signature/],
    ['a timestamp six minutes old', { timestamp: Math.floor(Date.now() / 1000) - 360 }, /too old/],
    ['a timestamp six minutes ahead', { timestamp: Math.floor(Date.now() / 1000) + 360 }, /too new/],
    ['no signature header', { headers: { 'webhook-signature': '' } }, /Missing required headers/],
  ])('answers 401 for %s, storing nothing', async (_what, options, message) => {
    const before = await stack.listAttachments('hook');
    const response = await deliver('hook', announce(`refused-${randomUUID()}`), options);
    expect(response.status).toBe(401);
    expect(await json(response)).toEqual({
      code: 'InvalidSignature',
      message: expect.stringMatching(message) as string,
    });
    expect(await stack.listAttachments('hook')).toEqual(before);
  });

  it('refuses a body changed after signing', async () => {
    const id = 'msg_tampered';
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = sign(NEW_SECRET, id, timestamp, announce('original'));
    expect((await deliver('hook', announce('tampered'), { id, timestamp, signature })).status).toBe(401);
  });

  it('answers 400 for a body that sets webhookId itself, and for malformed JSON', async () => {
    const own = await deliver(
      'hook',
      JSON.stringify({ id: 'x', contentType: 'a/b', media: 'm', webhookId: 'forged' }),
    );
    expect(own.status).toBe(400);
    expect((await deliver('hook', '{"id": ')).status).toBe(400);
  });

  it('answers 403 outside ALLOWED_TARGETS and 404 when no secret is configured', async () => {
    const response = await fetch(
      `${stack.host.url}/api/webhooks/dbs/demo/colls/private/docs/hook/attachments`,
      {
        method: 'POST',
        body: '{}',
      },
    );
    expect(response.status).toBe(403);
    const plain = await startStack();
    try {
      const off = await fetch(
        `${plain.host.url}/api/webhooks/dbs/demo/colls/items/docs/welcome/attachments`,
        {
          method: 'POST',
          body: '{}',
        },
      );
      expect(off.status).toBe(404);
    } finally {
      await plain.close();
    }
  });
});
