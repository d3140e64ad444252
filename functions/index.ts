// Azure Functions entry point (Node.js v4 programming model). It only adapts: the bridge core does the work.
import { app } from '@azure/functions';
import { createBridge } from '../src/bridge.js';
import { azureHandler } from '../src/http/azure-adapter.js';
import { jsonLineLogger } from '../src/log.js';
import { loadSettings } from '../src/settings.js';

// Stream request and response bodies instead of buffering them whole (host 4.28+).
app.setup({ enableHttpStream: true });

// A missing or malformed setting fails the app at start, with a message naming the setting.
const bridge = createBridge({ settings: loadSettings(process.env), log: jsonLineLogger() });

app.http('createAttachments', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'dbs/{db}/colls/{coll}/docs/{doc}/attachments',
  handler: azureHandler(bridge.fetch),
});
