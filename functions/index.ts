// Azure Functions entry point (Node.js v4 programming model). It only adapts: the bridge core does the work.
import { app } from '@azure/functions';
import { signsInEndUsers } from '../src/auth/authenticate.js';
import { createBridge } from '../src/bridge.js';
import { azureHandler } from '../src/http/azure-adapter.js';
import { jsonLineLogger } from '../src/log.js';
import { tuneRuntime } from '../src/runtime.js';
import { loadSettings } from '../src/settings.js';

// Stream request and response bodies instead of buffering them whole (host 4.28+).
app.setup({ enableHttpStream: true });
tuneRuntime();

// A missing or malformed setting fails the app at start, with a message naming the setting.
const settings = loadSettings(process.env);
const bridge = createBridge({ settings, log: jsonLineLogger() });
const handler = azureHandler(bridge.fetch);

app.http('createAttachments', {
  methods: ['POST'],
  // Function keys by default; with end-user sign-in the core checks the token or principal itself.
  authLevel: signsInEndUsers(settings.auth) ? 'anonymous' : 'function',
  route: 'dbs/{db}/colls/{coll}/docs/{doc}/attachments',
  handler,
});

// Webhook senders prove themselves with a Standard Webhooks signature, which the core checks.
app.http('webhookAttachments', {
  methods: ['POST'],
  authLevel: 'anonymous',
  route: 'webhooks/dbs/{db}/colls/{coll}/docs/{doc}/attachments',
  handler,
});
