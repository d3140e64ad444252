import Module from 'node:module';
import { HttpRequest, InvocationContext, type HttpHandler, type HttpResponseInit } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { startEmulator, type Emulator } from '../src/emulator/server.js';

/**
 * The Functions worker provides `@azure/functions-core` to the app at run time. Outside the worker we
 * provide a stand-in that records what the entry point registers, so the real entry module can be
 * loaded and its handler invoked as the worker would.
 */
interface Registration {
  metadata: { name: string; bindings: Record<string, Record<string, unknown>> };
  callback: HttpHandler;
}
const registrations: Registration[] = [];
const workerLogs: string[] = [];
const fakeCore = {
  log: (_level: string, _category: string, message: string) => workerLogs.push(message),
  setProgrammingModel: () => {},
  registerHook: () => ({ dispose: () => {} }),
  registerFunction: (metadata: Registration['metadata'], callback: HttpHandler) => {
    registrations.push({ metadata, callback });
    return { dispose: () => {} };
  },
};
type Load = (request: string, parent: unknown, isMain: boolean) => unknown;
const moduleWithLoad = Module as unknown as { _load: Load };
const originalLoad = moduleWithLoad._load;

let emulator: Emulator;

/** The HTTP trigger binding of the latest registration of a function. */
function triggerOf(name: string): Record<string, unknown> | undefined {
  const registration = registrations.findLast((r) => r.metadata.name === name);
  return Object.values(registration?.metadata.bindings ?? {}).find((b) => b.type === 'httpTrigger');
}
const saved = { ...process.env };

beforeAll(async () => {
  moduleWithLoad._load = function (request, parent, isMain) {
    return request === '@azure/functions-core' ? fakeCore : originalLoad.call(this, request, parent, isMain);
  };
  emulator = await startEmulator({ port: 0 });
  emulator.store.createDatabase({ id: 'demo' });
  emulator.store.createCollection('demo', { id: 'items', partitionKey: { paths: ['/id'], kind: 'Hash' } });
  emulator.store.createDocument('demo', 'items', { id: 'welcome' }, '["welcome"]');
});
afterAll(async () => {
  moduleWithLoad._load = originalLoad;
  process.env = saved;
  await emulator.close();
});

describe('the Azure Functions entry point', () => {
  it('registers its routes even with a setting missing, and answers 500 naming the setting', async () => {
    delete process.env.COSMOS_CONNECTION_STRING;
    delete process.env.COSMOS_ENDPOINT;
    delete process.env.COSMOS_KEY;
    vi.resetModules();
    await import('../functions/index.js');
    const registration = registrations.findLast((r) => r.metadata.name === 'createAttachments')!;
    const result = (await registration.callback(
      new HttpRequest({ method: 'POST', url: 'http://localhost:7071/api/dbs/a/colls/b/docs/c/attachments' }),
      new InvocationContext(),
    )) as HttpResponseInit;
    expect(result.status).toBe(500);
    const text = await new Response(result.body as ReadableStream).text();
    expect(JSON.parse(text)).toMatchObject({ code: 'ConfigurationError' });
    expect(text).toMatch(/COSMOS_CONNECTION_STRING/);
  });

  it('registers the attachments route as a streaming POST with authLevel function', async () => {
    process.env.COSMOS_CONNECTION_STRING = `AccountEndpoint=${emulator.url}/;AccountKey=${emulator.key};`;
    process.env.AzureWebJobsStorage = inject('storage');
    vi.resetModules();
    await import('../functions/index.js');
    expect(workerLogs).toContain('HTTP streaming enabled.');
    const registration = registrations.find((r) => r.metadata.name === 'createAttachments');
    expect(registration).toBeDefined();
    const trigger = Object.values(registration!.metadata.bindings).find((b) => b.type === 'httpTrigger');
    expect(trigger).toMatchObject({
      authLevel: 'function',
      methods: ['POST'],
      route: 'dbs/{db}/colls/{coll}/docs/{doc}/attachments',
      direction: 'in',
    });
    expect(triggerOf('webhookAttachments')).toMatchObject({
      authLevel: 'anonymous',
      methods: ['POST'],
      route: 'webhooks/dbs/{db}/colls/{coll}/docs/{doc}/attachments',
    });
  });

  it('registers the upload route anonymous when end users sign in, since the core checks them', async () => {
    process.env.AUTH_EASY_AUTH = 'true';
    process.env.ALLOWED_TARGETS = 'demo/items';
    try {
      vi.resetModules();
      await import('../functions/index.js');
      expect(triggerOf('createAttachments')).toMatchObject({ authLevel: 'anonymous' });
    } finally {
      delete process.env.AUTH_EASY_AUTH;
      delete process.env.ALLOWED_TARGETS;
      vi.resetModules();
      await import('../functions/index.js');
    }
  });

  it('serves an invocation end to end through the thin adapter', async () => {
    const registration = registrations.findLast((r) => r.metadata.name === 'createAttachments')!;
    const boundary = 'fn';
    const body =
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="from-functions.txt"\r\n` +
      `Content-Type: text/plain\r\n\r\nhello from the worker\r\n--${boundary}--\r\n`;
    const request = new HttpRequest({
      method: 'POST',
      url: 'http://localhost:7071/api/dbs/demo/colls/items/docs/welcome/attachments',
      headers: {
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'x-ms-documentdb-partitionkey': '["welcome"]',
      },
      body: { bytes: Buffer.from(body) },
    });
    const result = (await registration.callback(request, new InvocationContext())) as HttpResponseInit;
    expect(result.status).toBe(201);
    const text = await new Response(result.body as ReadableStream).text();
    expect(JSON.parse(text)).toMatchObject({ attachments: [{ id: 'from-functions.txt', size: 21 }] });
    expect((result.headers as Record<string, string>)['x-ms-request-charge']).toBe('1');
  });
});
