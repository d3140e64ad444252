import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBridge, type Bridge } from '../src/bridge.js';
import { EMULATOR_KEY } from '../src/emulator/server.js';
import { loadSettings } from '../src/settings.js';

/**
 * The core as the Functions worker drives it: a web Request whose body is the caller's live stream,
 * which breaks (with whatever error) when the caller goes, possibly after the answer was given.
 */
let bridge: Bridge;
beforeAll(() => {
  bridge = createBridge({
    settings: loadSettings({
      COSMOS_ENDPOINT: 'http://127.0.0.1:9/',
      COSMOS_KEY: EMULATOR_KEY,
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    }),
  });
});
afterAll(() => bridge.close());

function liveBody(first: string) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      c.enqueue(new TextEncoder().encode(first));
    },
  });
  return {
    stream,
    breakOff: () => controller.error(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })),
  };
}

describe('the core under the Functions worker', () => {
  it.each([
    ['multipart/form-data', 'MissingBoundary'],
    ['multipart/form-data; boundary=x', 'RequestAborted'],
    ['text/plain', 'UnsupportedMediaType'],
  ])('survives the caller breaking off after or during a %s request', async (contentType, code) => {
    const body = liveBody('--x\r\n');
    const pending = bridge.fetch(
      new Request('http://host/api/dbs/demo/colls/items/docs/welcome/attachments', {
        method: 'POST',
        body: body.stream,
        duplex: 'half',
        headers: { 'content-type': contentType },
      }),
    );
    // Answered early for a refused request; for a form still being read, the break is what ends it.
    if (code === 'RequestAborted') setImmediate(body.breakOff);
    const response = await pending;
    expect(await response.json()).toMatchObject({ code });
    body.breakOff();
    // An unhandled 'error' would fail this file (Vitest reports it); the core keeps serving.
    await new Promise((resolve) => setImmediate(resolve));
    const next = await bridge.fetch(new Request('http://host/api/nope'));
    expect(next.status).toBe(404);
  });
});
