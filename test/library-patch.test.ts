// What this project adds to @azure/functions 4.16.5 at install (patches/) for uploads: the request body
// as a web stream that hands on node:http's chunks instead of copying each one, the proxied Node stream
// named on it, and the web Request the library built, so the app uses it as it is.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFixtureHost, type TestHost } from './helpers/functions-host.js';

let host: TestHost;
beforeAll(async () => {
  host = await startFixtureHost('http-app');
});
afterAll(() => host?.close());

describe('the patched library request', () => {
  const body = randomBytes(3 * 1024 * 1024 + 17);
  const sha256 = createHash('sha256').update(body).digest('hex');

  for (const via of ['web', 'node'] as const) {
    it(`delivers the body whole through the ${via} stream, and exposes the native Request and the Node stream`, async () => {
      const response = await fetch(`${host.url}/api/patched-request?via=${via}`, { method: 'POST', body });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({
        nativeRequest: true,
        sameBody: true,
        sameSignal: true,
        nodeBody: true,
        // The web stream hands on the Buffers node:http read: no copy per chunk.
        buffers: true,
        size: body.length,
        sha256,
      });
    });
  }
});
