// The least a Functions app does for a create, on the path Azure runs: the app folder
// bench/functions-floor/ run by the local Functions host, whose worker runs this file through
// @azure/functions' streaming path. The host checks the function key (as Azure's host does). A JSON
// metadata create is read and parsed, given the upload's mark, signed and sent through an undici pool,
// and its answer returned (bench/small-floor.ts is the same on plain node:http); a multipart upload of
// one file is read from the Node stream behind the request's body (as the bridge reads it, through
// src/http/node-body.ts), searched
// once for its closing delimiter and hashed as it streams, its bytes sent as raw media with
// backpressure, and its size and SHA-256 returned (bench/one-file-upload.ts; bench/upload-floor.ts is
// the same on plain node:http). No routing of its own, policies, limits, replay or clean-up, and a
// plain result object for the answer rather than a web Response: the floors the bridge's Functions
// path is compared with.
import { app, type HttpRequest, type HttpResponseInit } from '@azure/functions';
import { Pool } from 'undici';
import { nodeBodyOf } from '../src/http/node-body.js';
import { randomString } from '../src/random.js';
import { tuneRuntime } from '../src/runtime.js';
import { uploadOneFile } from './one-file-upload.js';
import { ATTACHMENTS_PATH, signedCreateHeaders } from './signing.js';

// With the runtime settings the bridge's worker has (src/runtime.ts), as the upload floor has them.
await tuneRuntime(process.env);
const pool = new Pool(process.env.COSMOS_ENDPOINT ?? '', { connections: 64 });

const json = (status: number, body: unknown): HttpResponseInit => ({
  status,
  headers: { 'content-type': 'application/json' },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

async function createFromJson(request: HttpRequest): Promise<HttpResponseInit> {
  const metadata = (await request.json()) as Record<string, unknown>;
  const body = JSON.stringify({ ...metadata, bridgeUploadId: randomString(16, 'base64url') });
  const answer = await pool.request({
    method: 'POST',
    path: ATTACHMENTS_PATH,
    headers: { ...signedCreateHeaders(), 'content-type': 'application/json', accept: 'application/json' },
    body,
  });
  return json(answer.statusCode, await answer.body.text());
}

app.setup({ enableHttpStream: true });
app.http('floor', {
  route: 'dbs/{db}/colls/{coll}/docs/{doc}/attachments',
  methods: ['POST'],
  authLevel: 'function',
  handler: async (request) => {
    const boundary = /boundary=([^;]+)/.exec(request.headers.get('content-type') ?? '')?.[1];
    try {
      if (!boundary) return await createFromJson(request);
      const { status, body } = await uploadOneFile(nodeBodyOf(request), boundary, pool);
      return json(status, body);
    } catch (err) {
      return json(502, { code: 'UpstreamUnreachable', message: String(err) });
    }
  },
});
