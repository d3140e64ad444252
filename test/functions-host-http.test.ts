// The local Functions host's HTTP semantics, over real sockets into a worker running fixture apps
// through `@azure/functions`: routes and their order, methods, keys, the request the handler sees,
// logs, response streaming, CORS and local.settings.json.
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureCopy, startFixtureHost, type TestHost } from './helpers/functions-host.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => Record<string, unknown>;
}

/** One request with raw header lines (repeated names stay separate lines). */
function send(
  url: string,
  init: { method?: string; headers?: [string, string][]; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // With raw header lines Node adds no Host header itself.
    const flat = [['Host', new URL(url).host], ...(init.headers ?? [])].flat();
    const req = httpRequest(url, { method: init.method ?? 'GET', headers: flat, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          json: () => JSON.parse(text) as Record<string, unknown>,
        });
      });
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

let host: TestHost;

beforeAll(async () => {
  host = await startFixtureHost('http-app', { functionKey: 'fixture-function-key-0123456789' });
});
afterAll(async () => {
  await host.close();
});

const attachments = '/api/dbs/demo/colls/items/docs/welcome/attachments';

describe('routes (routePrefix "api")', () => {
  it('prefers a literal segment to a parameter whatever the registration order, and matches methods', async () => {
    const upload = await send(`${host.url}${attachments}/uploads`, { method: 'POST', body: 'x' });
    expect(upload.json()).toMatchObject({
      fn: 'uploadAttachments',
      params: { db: 'demo', coll: 'items', doc: 'welcome' },
    });
    // GET is not a method of the literal route: the parameter route takes it, with id "uploads".
    const get = await send(`${host.url}${attachments}/uploads`);
    expect(get.json()).toMatchObject({ fn: 'attachmentById', params: { id: 'uploads' } });
    for (const method of ['GET', 'PUT', 'DELETE']) {
      const byId = await send(`${host.url}${attachments}/photo.jpg`, { method });
      expect(byId.json()).toMatchObject({ fn: 'attachmentById', method, params: { id: 'photo.jpg' } });
    }
    expect((await send(`${host.url}${attachments}`)).json()).toMatchObject({ fn: 'listAttachments' });
    expect((await send(`${host.url}${attachments}`, { method: 'POST', body: '{}' })).json()).toMatchObject({
      fn: 'createAttachments',
    });
  });

  it('answers 404 with an empty body for no route and for a method no route takes, as the host does', async () => {
    for (const [method, path] of [
      ['GET', '/api/nothing/here'],
      ['PATCH', attachments],
      ['HEAD', '/api/optional'],
      ['GET', '/dbs/demo/colls/items/docs/welcome/attachments'],
      ['GET', '/api/items/abc'],
    ] as const) {
      const answer = await send(`${host.url}${path}`, { method });
      expect(answer.status, `${method} ${path}`).toBe(404);
      expect(answer.text).toBe('');
      expect(answer.headers['content-length']).toBe('0');
    }
  });

  it('supports optional, catch-all and constrained parameters, decoding and case-insensitive literals', async () => {
    expect((await send(`${host.url}/api/optional`)).json()).toMatchObject({ fn: 'optional', params: {} });
    expect((await send(`${host.url}/api/optional/ada`)).json()).toMatchObject({ params: { name: 'ada' } });
    expect((await send(`${host.url}/api/files/a/b%20c/d.txt`)).json()).toMatchObject({
      fn: 'catchAll',
      params: { path: 'a/b c/d.txt' },
    });
    expect((await send(`${host.url}/api/items/42`)).json()).toMatchObject({
      fn: 'typed',
      params: { n: '42' },
    });
    // The route defaults to the function name; literals compare case-insensitively.
    expect((await send(`${host.url}/API/DefaultRoute`)).json()).toMatchObject({ fn: 'defaultRoute' });
    // An encoded slash stays encoded and inside one segment.
    expect((await send(`${host.url}${attachments}/a%2Fb`)).json()).toMatchObject({ params: { id: 'a%2Fb' } });
  });

  it('lists what the app registered', () => {
    const upload = host.functions.find((f) => f.name === 'uploadAttachments');
    expect(upload).toMatchObject({
      trigger: 'httpTrigger',
      route: 'api/dbs/{db}/colls/{coll}/docs/{doc}/attachments/uploads',
      methods: ['POST'],
      authLevel: 'anonymous',
    });
    expect(host.routePrefix).toBe('api');
    expect(host.loadError).toBeUndefined();
  });
});

describe('route prefixes', () => {
  it('serves routes at the root with routePrefix "" and under a custom prefix', async () => {
    const bare = await startFixtureHost('prefix-empty');
    const custom = await startFixtureHost('prefix-custom');
    try {
      expect(bare.routePrefix).toBe('');
      expect(
        (
          await send(`${bare.url}/dbs/d/colls/c/docs/x/attachments/uploads`, { method: 'POST', body: 'x' })
        ).json(),
      ).toMatchObject({
        fn: 'uploadAttachments',
      });
      expect((await send(`${bare.url}/api/echo`)).status).toBe(404);
      expect(custom.routePrefix).toBe('v2/bridge');
      expect((await send(`${custom.url}/v2/bridge/echo/1`)).json()).toMatchObject({
        fn: 'echo',
        params: { id: '1' },
      });
      expect((await send(`${custom.url}/api/echo/1`)).status).toBe(404);
    } finally {
      await bare.close();
      await custom.close();
    }
    // Closing the host ran the app's appTerminate hook in the worker.
    expect(bare.logs.some((r) => r.message === 'appTerminate hook ran')).toBe(true);
  });
});

describe('function keys', () => {
  const fn = () => `${host.url}/api/keys/function`;
  const admin = () => `${host.url}/api/keys/admin`;

  it('uses the keys it was given and answers 401 with an empty body for a missing or wrong key', async () => {
    expect(host.functionKey).toBe('fixture-function-key-0123456789');
    expect(host.masterKey).toMatch(/^[\w-]{40}$/);
    for (const answer of [
      await send(fn()),
      await send(`${fn()}?code=wrong`),
      await send(fn(), { headers: [['x-functions-key', 'wrong']] }),
    ]) {
      expect(answer.status).toBe(401);
      expect(answer.text).toBe('');
    }
  });

  it('takes the key from x-functions-key or ?code= (the header wins, even when wrong)', async () => {
    expect((await send(`${fn()}?code=${host.functionKey}`)).status).toBe(200);
    expect((await send(`${fn()}?CODE=${host.functionKey}`)).status).toBe(200);
    expect((await send(fn(), { headers: [['x-functions-key', host.functionKey]] })).status).toBe(200);
    expect(
      (await send(`${fn()}?code=wrong`, { headers: [['x-functions-key', host.functionKey]] })).status,
    ).toBe(200);
    expect(
      (await send(`${fn()}?code=${host.functionKey}`, { headers: [['x-functions-key', 'wrong']] })).status,
    ).toBe(401);
    expect(
      (await send(`${fn()}?code=${host.functionKey}`, { headers: [['x-functions-key', '']] })).status,
    ).toBe(401);
  });

  it('lets the master key call function and admin functions, and only the master key call admin ones', async () => {
    expect((await send(fn(), { headers: [['x-functions-key', host.masterKey]] })).status).toBe(200);
    expect((await send(admin(), { headers: [['x-functions-key', host.masterKey]] })).status).toBe(200);
    expect((await send(admin(), { headers: [['x-functions-key', host.functionKey]] })).status).toBe(401);
    expect((await send(`${host.url}/api/echo`, { headers: [['x-functions-key', 'anything']] })).status).toBe(
      200,
    );
  });
});

describe('the request the handler sees', () => {
  it('has the caller URL from x-forwarded-host/-proto and the caller headers, repeated ones joined with ","', async () => {
    const answer = await send(`${host.url}/api/echo/7?x=1&x=2&code=c0de&empty`, {
      headers: [
        ['X-Multi', 'a'],
        ['X-Multi', 'b'],
        ['X-Forwarded-Host', 'spoofed.example'],
      ],
    });
    const seen = answer.json() as {
      url: string;
      headers: Record<string, string>;
      params: Record<string, string>;
    };
    expect(seen.url).toBe(`${host.url}/api/echo/7?x=1&x=2&code=c0de&empty`);
    expect(seen.headers['x-multi']).toBe('a,b');
    // Headers come from the trigger metadata (what the caller sent), the URL from the proxied request.
    expect(seen.headers['x-forwarded-host']).toBe('spoofed.example');
    expect(seen.headers['x-ms-invocation-id']).toBeUndefined();
    // Query keys show up as route params (last value wins), except `code`; route values override them.
    expect(seen.params).toEqual({ x: '2', empty: '', id: '7' });
  });

  it("pairs the proxied request by the host's invocation id, whatever x-ms-invocation-id the caller sent", async () => {
    const answer = await send(`${host.url}/api/echo`, { headers: [['x-ms-invocation-id', 'caller-chosen']] });
    expect(answer.status).toBe(200);
    const seen = answer.json();
    expect(seen.invocationId).toMatch(/^[0-9a-f-]{36}$/);
    expect((seen.headers as Record<string, string>)['x-ms-invocation-id']).toBe('caller-chosen');
  });

  it('keeps the headers when a query key is named "headers" (the host shadows them; the patched library recovers)', async () => {
    // The host's binding data is case-insensitive: the query key takes the place of `Headers`. The
    // library as published then gives the handler no headers at all; this project's patch
    // (patches/@azure+functions+*.patch) falls back to the proxied request's own.
    const lower = (await send(`${host.url}/api/echo?headers=1`, { headers: [['x-visible', 'yes']] })).json();
    expect(lower.headers).toMatchObject({ 'x-visible': 'yes' });
    expect(lower.headers).not.toHaveProperty('x-ms-invocation-id');
    expect(lower.params).toEqual({ headers: '1' });
    const exact = (await send(`${host.url}/api/echo?Headers=1`, { headers: [['x-visible', 'yes']] })).json();
    expect(exact.headers).toMatchObject({ 'x-visible': 'yes' });
  });

  it('gets a traceparent per invocation that continues the caller trace', async () => {
    const parent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const seen = (await send(`${host.url}/api/echo`, { headers: [['traceparent', parent]] })).json();
    expect(seen.traceParent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(seen.traceParent).not.toBe(parent);
    const fresh = (await send(`${host.url}/api/echo`)).json();
    expect(fresh.traceParent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });
});

describe('logs', () => {
  it('carry the level, category and invocation id of what the handler logged, and the invocation traceparent', async () => {
    const answer = await send(`${host.url}/api/logs`);
    expect(answer.status).toBe(204);
    const executed = await host.waitForLog((r) =>
      r.message.startsWith("Executed 'Functions.logs' (Succeeded"),
    );
    const records = host.invocationLogs(executed.invocationId!);
    const user = records.filter((r) => r.category === 'Function.logs.User').map((r) => [r.level, r.message]);
    expect(user).toEqual(
      expect.arrayContaining([
        ['information', 'plain log 42'],
        ['information', 'info log'],
        ['warning', 'warn log'],
        ['error', 'error log'],
      ]),
    );
    const executing = records.find((r) => r.message.startsWith("Executing 'Functions.logs'"));
    expect(executing?.traceParent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(user).toContainEqual(['information', `traceparent ${executing?.traceParent as string}`]);
    // The app's hooks ran around the invocation, and its appStart hook at load.
    expect(user).toContainEqual(['information', 'preInvocation for logs']);
    expect(user).toContainEqual(['information', 'postInvocation saw a result']);
    expect(host.logs.some((r) => r.message === 'appStart hook ran')).toBe(true);
  });
});

describe('responses', () => {
  it('stream back what the handler streams, with its headers', async () => {
    const answer = await send(`${host.url}/api/stream-out`);
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('hello stream');
    expect(answer.headers['x-custom']).toBe('yes');
    expect(answer.headers['transfer-encoding']).toBe('chunked');
    expect(answer.headers['x-ms-invocation-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('local.settings.json', () => {
  let app: { dir: string; remove: () => Promise<void> };
  let local: TestHost;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    app = await fixtureCopy('http-app', {
      'local.settings.json': JSON.stringify({
        IsEncrypted: false,
        Values: {
          FROM_FILE: 'file',
          BOTH: 'file',
          FUNCTIONS_HOST_FUNCTION_KEY: 'settings-function-key-0123456789',
        },
        Host: { LocalHttpPort: port, CORS: 'https://a.example,https://b.example', CORSCredentials: true },
      }),
    });
    local = await startFixtureHost(app.dir, { port: undefined, env: { BOTH: 'environment' } });
  });
  afterAll(async () => {
    await local.close();
    await app.remove();
  });

  it('gives the worker its Values (the environment wins) and listens on Host.LocalHttpPort', async () => {
    expect(local.url).toBe(`http://127.0.0.1:${port}`);
    const seen = (
      await send(`${local.url}/api/env?name=FROM_FILE&name=BOTH&name=FUNCTIONS_HOST_FUNCTION_KEY`)
    ).json();
    expect(seen).toEqual({ FROM_FILE: 'file', BOTH: 'environment', FUNCTIONS_HOST_FUNCTION_KEY: null });
  });

  it('takes the function key from the settings, and keeps it from the app', async () => {
    expect(local.functionKey).toBe('settings-function-key-0123456789');
    const answer = await send(`${local.url}/api/keys/function`, {
      headers: [['x-functions-key', 'settings-function-key-0123456789']],
    });
    expect(answer.status).toBe(200);
  });

  it('answers CORS preflights 204 as Core Tools does, with the allowed origin only', async () => {
    const preflight = await send(`${local.url}/api/hash`, {
      method: 'OPTIONS',
      headers: [
        ['Origin', 'https://a.example'],
        ['Access-Control-Request-Method', 'POST'],
        ['Access-Control-Request-Headers', 'content-type, x-functions-key'],
      ],
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers).toMatchObject({
      'access-control-allow-origin': 'https://a.example',
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'POST',
      'access-control-allow-headers': 'content-type,x-functions-key',
      vary: 'Origin',
    });
    const refused = await send(`${local.url}/api/hash`, {
      method: 'OPTIONS',
      headers: [
        ['Origin', 'https://evil.example'],
        ['Access-Control-Request-Method', 'POST'],
      ],
    });
    expect(refused.status).toBe(204);
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('adds CORS headers to answers, over the ones the function set, and to 404s', async () => {
    const answer = await send(`${local.url}/api/stream-out`, { headers: [['Origin', 'https://b.example']] });
    expect(answer.headers['access-control-allow-origin']).toBe('https://b.example');
    expect(answer.headers['access-control-allow-credentials']).toBe('true');
    const missing = await send(`${local.url}/api/missing`, { headers: [['Origin', 'https://a.example']] });
    expect(missing.status).toBe(404);
    expect(missing.headers['access-control-allow-origin']).toBe('https://a.example');
    const other = await send(`${local.url}/api/echo`, { headers: [['Origin', 'https://c.example']] });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
