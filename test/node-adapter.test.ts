// The node:http adapter (src/http/node-adapter.ts), which the benchmark's reference bridge runs on:
// answers written whole, small ones in one write and large ones streamed, on a real socket.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeServer, listen } from '../src/http/listening.js';
import { nodeHandler } from '../src/http/node-adapter.js';

const LARGE = randomBytes(3 * 1024 * 1024 + 5);
const failures: unknown[] = [];
let server: Server;
let origin: string;

beforeAll(async () => {
  server = createServer(
    nodeHandler(
      async (request) => {
        const url = new URL(request.url);
        if (url.pathname === '/echo') {
          const body = Buffer.from(await request.arrayBuffer());
          const json = JSON.stringify({ method: request.method, size: body.length, text: body.toString() });
          return new Response(json, {
            status: 201,
            headers: {
              'content-type': 'application/json',
              'content-length': String(Buffer.byteLength(json)),
            },
          });
        }
        if (url.pathname === '/large') {
          return new Response(LARGE, { headers: { 'content-length': String(LARGE.length) } });
        }
        if (url.pathname === '/chunked') {
          // No Content-Length: streamed whatever its size.
          return new Response(
            new ReadableStream({
              start(controller) {
                controller.enqueue(new TextEncoder().encode('one,'));
                controller.enqueue(new TextEncoder().encode('two'));
                controller.close();
              },
            }),
          );
        }
        return new Response(null, { status: 204 });
      },
      (err) => failures.push(err),
    ),
  );
  await listen(server, 0, '127.0.0.1');
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => closeServer(server));

describe('the node:http adapter', () => {
  it('writes a small answer whole, with its status and headers', async () => {
    const response = await fetch(`${origin}/echo`, { method: 'POST', body: 'héllo' });
    expect(response.status).toBe(201);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({ method: 'POST', size: 6, text: 'héllo' });
  });

  it('streams a large answer whole', async () => {
    const response = await fetch(`${origin}/large`);
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.length).toBe(LARGE.length);
    expect(createHash('sha256').update(body).digest('hex')).toBe(
      createHash('sha256').update(LARGE).digest('hex'),
    );
  });

  it('streams an answer without a length', async () => {
    const response = await fetch(`${origin}/chunked`);
    expect(await response.text()).toBe('one,two');
  });

  it('sends no body for HEAD and for an answer without one', async () => {
    const head = await fetch(`${origin}/echo`, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(
      String(JSON.stringify({ method: 'HEAD', size: 0, text: '' }).length),
    );
    expect(await head.text()).toBe('');
    const empty = await fetch(`${origin}/nothing`, { method: 'DELETE' });
    expect(empty.status).toBe(204);
    expect(await empty.text()).toBe('');
    expect(failures).toEqual([]);
  });
});
