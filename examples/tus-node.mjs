#!/usr/bin/env node
// Uploads a file through the bridge's resumable route (tus 1.0) with tus-js-client, in chunks, and
// prints the attachment it became (JSON, on stdout). Run it again after an interruption and it
// resumes where the earlier run stopped (upload URLs are remembered in TUS_URL_STORAGE).
//
//   FUNCTION_KEY=<key> node examples/tus-node.mjs photo.jpg [image/jpeg]
//
// Environment: BRIDGE_URL (default http://127.0.0.1:7071/api), FUNCTION_KEY or BEARER_TOKEN, DB, COLL,
// DOC (default demo/items/welcome, partition key = DOC), CHUNK_BYTES (default 8 MiB: each chunk is one
// PATCH, which the Functions host caps at 100 MiB and 230 s), TUS_URL_STORAGE (default
// .tus-uploads.json in the working folder). Needs `npm install` (tus-js-client).
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { FileUrlStorage, Upload } from 'tus-js-client';

const [file, type = 'application/octet-stream'] = process.argv.slice(2);
if (!file) {
  console.error('usage: node examples/tus-node.mjs <file> [content type]');
  process.exit(2);
}
const base = process.env.BRIDGE_URL ?? 'http://127.0.0.1:7071/api';
const { DB = 'demo', COLL = 'items', DOC = 'welcome' } = process.env;
const enc = encodeURIComponent;
const endpoint = `${base}/dbs/${enc(DB)}/colls/${enc(COLL)}/docs/${enc(DOC)}/attachments/uploads`;
const credential = process.env.BEARER_TOKEN
  ? { Authorization: `Bearer ${process.env.BEARER_TOKEN}` }
  : { 'x-functions-key': process.env.FUNCTION_KEY ?? '' };

const upload = new Upload(createReadStream(file), {
  endpoint,
  // Required: without it the whole rest of the file goes in one PATCH.
  chunkSize: Number(process.env.CHUNK_BYTES ?? 8 * 1024 * 1024),
  // 409 (offset moved) and 423 (another request holds the upload) are retried too, after asking the offset.
  retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
  headers: { ...credential, 'x-ms-documentdb-partitionkey': JSON.stringify([DOC]) },
  // filename is the attachment id; uniqueId asks for a fresh id derived from it (no 409 for a taken name).
  metadata: { filename: basename(file), filetype: type, uniqueId: 'true' },
  urlStorage: new FileUrlStorage(process.env.TUS_URL_STORAGE ?? '.tus-uploads.json'),
  removeFingerprintOnSuccess: true,
  onProgress: (sent, total) => console.error(`${sent} of ${total} bytes`),
  onError: (err) => {
    console.error(`upload failed: ${err.message}`);
    process.exitCode = 1;
  },
  onSuccess: async ({ lastResponse }) => {
    // The PATCH that completed the upload carries the attachment (base64 JSON); a run that found the
    // upload already complete asks the upload for it instead.
    const header = lastResponse.getHeader('X-Attachment');
    const attachment = header
      ? JSON.parse(Buffer.from(header, 'base64').toString('utf8'))
      : await (await fetch(upload.url, { headers: credential })).json().then((status) => status.attachment);
    console.log(JSON.stringify(attachment, null, 2));
  },
});

// Resume an earlier run's upload of this very file, if there is one.
const [previous] = await upload.findPreviousUploads();
if (previous) upload.resumeFromPreviousUpload(previous);
upload.start();
