// The buffering baseline: what most samples do. A web Request over node:http, `await request.formData()`
// (which holds the whole body, then the parsed file, in memory), then the file POSTed to the sink.
// Usage: SINK=http://127.0.0.1:<port> PORT=<port|0> node naive-formdata.js
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { request } from 'undici';
import { ATTACHMENTS_PATH, signedCreateHeaders } from './signing.js';

const sink = new URL(process.env.SINK ?? '');

const server = createServer((req, res) => {
  const headers = new Headers();
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
    headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  const webRequest = new Request(new URL(req.url ?? '/', 'http://127.0.0.1'), {
    method: req.method ?? 'POST',
    headers,
    body: Readable.toWeb(req) as ReadableStream<Uint8Array>,
    duplex: 'half',
  });
  (async () => {
    const form = await webRequest.formData();
    const file = form.get('file');
    if (!(file instanceof File)) throw new Error('no file part named "file"');
    const reply = await request(new URL(ATTACHMENTS_PATH, sink), {
      method: 'POST',
      headers: {
        ...signedCreateHeaders(),
        'content-type': file.type || 'application/octet-stream',
        'content-length': String(file.size),
        slug: file.name,
      },
      body: Readable.fromWeb(file.stream() as WebReadableStream<Uint8Array>),
    });
    res.writeHead(reply.statusCode, { 'content-type': 'application/json' });
    res.end(await reply.body.text());
  })().catch((err: unknown) => {
    console.error(err);
    res.writeHead(500).end();
  });
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  console.log(`naive formData() handler listening on http://127.0.0.1:${port}`);
});
process.once('SIGTERM', () => process.exit(0));
