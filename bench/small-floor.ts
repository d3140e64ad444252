// The least a Node bridge does for a JSON metadata create: node:http takes the request, the key is
// checked, the body read and parsed, the upload's mark added, the Cosmos DB request signed and sent
// through an undici pool, and the answer passed back. No routing, policies, limits, clean-up or
// web-standard Request and Response: the floor per request that the bridge's CPU is compared with.
// Usage: TARGET=http://127.0.0.1:<port> PORT=<port|0> FUNCTION_KEY=... node small-floor.js
import { createServer } from 'node:http';
import { Pool } from 'undici';
import { randomString } from '../src/random.js';
import { ATTACHMENTS_PATH, signedCreateHeaders } from './signing.js';

const pool = new Pool(process.env.TARGET ?? '', { connections: 64 });
const functionKey = process.env.FUNCTION_KEY ?? '';

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    if (req.headers['x-functions-key'] !== functionKey) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"code":"Unauthorized"}');
      return;
    }
    const metadata = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    const body = JSON.stringify({ ...metadata, bridgeUploadId: randomString(16, 'base64url') });
    pool
      .request({
        method: 'POST',
        path: ATTACHMENTS_PATH,
        headers: { ...signedCreateHeaders(), 'content-type': 'application/json', accept: 'application/json' },
        body,
      })
      .then(async (answer) => {
        const text = await answer.body.text();
        res
          .writeHead(answer.statusCode, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(text),
          })
          .end(text);
      })
      .catch(() => {
        res.writeHead(502, { 'content-type': 'application/json' }).end('{"code":"UpstreamUnreachable"}');
      });
  });
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  console.log(`small-request floor listening on http://127.0.0.1:${port}`);
});
process.once('SIGTERM', () => process.exit(0));
