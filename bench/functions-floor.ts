// The least a Functions app does for a JSON metadata create, on the path Azure runs: the app folder
// bench/functions-floor/ run by the local Functions host, whose worker runs this file through
// @azure/functions' streaming path. The host checks the function key (as Azure's host does); the
// handler reads and parses the body, adds the upload's mark, signs the Cosmos DB request, sends it
// through an undici pool and returns the answer. No routing of its own, policies, limits or clean-up,
// no web Response (a plain result object): the floor per request that the bridge's Functions path is
// compared with (bench/small-floor.ts is the same on plain node:http).
import { app } from '@azure/functions';
import { Pool } from 'undici';
import { randomString } from '../src/random.js';
import { tuneRuntime } from '../src/runtime.js';
import { ATTACHMENTS_PATH, signedCreateHeaders } from './signing.js';

// With the runtime settings the bridge's worker has (src/runtime.ts), as the upload floor has them.
await tuneRuntime({});
const pool = new Pool(process.env.COSMOS_ENDPOINT ?? '', { connections: 64 });

app.setup({ enableHttpStream: true });
app.http('floor', {
  route: 'dbs/{db}/colls/{coll}/docs/{doc}/attachments',
  methods: ['POST'],
  authLevel: 'function',
  handler: async (request) => {
    const metadata = (await request.json()) as Record<string, unknown>;
    const body = JSON.stringify({ ...metadata, bridgeUploadId: randomString(16, 'base64url') });
    try {
      const answer = await pool.request({
        method: 'POST',
        path: ATTACHMENTS_PATH,
        headers: { ...signedCreateHeaders(), 'content-type': 'application/json', accept: 'application/json' },
        body,
      });
      const text = await answer.body.text();
      return { status: answer.statusCode, headers: { 'content-type': 'application/json' }, body: text };
    } catch {
      return {
        status: 502,
        headers: { 'content-type': 'application/json' },
        body: '{"code":"UpstreamUnreachable"}',
      };
    }
  },
});
