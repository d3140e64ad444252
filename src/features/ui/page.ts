/**
 * The upload page's HTML: a form for the document and the credential, the uploads and the attachments.
 * No inline script or style (the Content-Security-Policy allows neither); the API's base path, which
 * depends on host.json's route prefix, travels in a data attribute.
 */
export function pageHtml(apiBase: string): string {
  const base = escapeHtml(apiBase);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Upload attachments</title>
<link rel="icon" href="${base}/ui/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="${base}/ui/app.css">
<script type="module" src="${base}/ui/app.js"></script>
</head>
<body data-api-base="${base}">
<a class="skip" href="#upload-heading">Skip to the uploads</a>
<main>
<h1>Upload attachments</h1>
<form id="target" novalidate>
<div class="fields">
<fieldset>
<legend>Document</legend>
<div><label for="db">Database</label><input type="text" id="db" name="db" autocomplete="off" spellcheck="false"></div>
<div><label for="coll">Collection</label><input type="text" id="coll" name="coll" autocomplete="off" spellcheck="false"></div>
<div><label for="doc">Document id</label><input type="text" id="doc" name="doc" autocomplete="off" spellcheck="false"></div>
<div><label for="pk">Partition key</label><input type="text" id="pk" name="pk" autocomplete="off" spellcheck="false" aria-describedby="pk-hint">
<p class="hint" id="pk-hint">A value, or JSON such as ["a"]. Empty: the document id.</p></div>
</fieldset>
<fieldset>
<legend>Sign-in</legend>
<div class="choice" role="radiogroup" aria-label="Kind of credential">
<input type="radio" id="kind-key" name="kind" value="key" checked><label for="kind-key">Function key</label>
<input type="radio" id="kind-bearer" name="kind" value="bearer"><label for="kind-bearer">Bearer token</label>
</div>
<div><label for="credential">Key or token</label><input type="password" id="credential" name="credential" autocomplete="off" spellcheck="false" aria-describedby="credential-hint">
<p class="hint" id="credential-hint">Sent with each request of this page only; never stored.</p></div>
<details>
<summary>Upload options</summary>
<div><label for="chunk">Chunk size (KiB)</label><input type="number" id="chunk" name="chunk" min="1" value="5120" inputmode="numeric"></div>
<div class="choice"><input type="checkbox" id="unique" name="unique"><label for="unique">Give each file a fresh id (keeps the name as originalName)</label></div>
</details>
</fieldset>
</div>
<button type="submit">Show attachments</button>
</form>
<p id="problem" class="problem" role="alert" hidden></p>
<section aria-labelledby="upload-heading">
<h2 id="upload-heading" tabindex="-1">Uploads</h2>
<div id="drop" class="drop">
<label for="files">Choose files to upload</label>
<input type="file" id="files" multiple>
<p class="hint">or drop them here. Uploads resume after a lost connection.</p>
</div>
<ul id="queue" aria-label="Uploads in progress"></ul>
</section>
<section aria-labelledby="list-heading">
<h2 id="list-heading">Attachments</h2>
<ul id="attachments" aria-labelledby="list-heading"></ul>
</section>
<p id="status" class="status" role="status" aria-live="polite"></p>
</main>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
