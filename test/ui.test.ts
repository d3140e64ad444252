import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBridge } from '../src/bridge.js';
import { ROUTES } from '../src/routes.js';
import { loadSettings } from '../src/settings.js';
import { AUDIENCE, startIdentityProvider } from './helpers/identity-provider.js';
import { COLL, DB, FUNCTION_KEY, json, sha256, startStack, type Stack } from './helpers/stack.js';

/**
 * The upload page (src/features/ui/, docs/ui.md) in a real Chromium, against the app in the local
 * Functions host: uploads over tus with progress to 100 %, a network cut in the middle of an upload
 * and the resume after it, the attachments listed with a thumbnail, a download compared byte for
 * byte, and screenshots at desktop and phone widths (test-results/ui/).
 */
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTEFACTS = join('test-results', 'ui');
/** A 24×24 PNG in one colour, so the list has an image to show a thumbnail of. */
const PNG = solidPng(24, [11, 92, 173]);
const WAIT_MS = 30_000;

/**
 * The little of the DOM that the functions run in the page use: this project's TypeScript has no DOM
 * types (the page's own code has them), and the page's Content-Security-Policy refuses code as text.
 */
declare const document: {
  querySelectorAll(selector: string): ArrayLike<{ dataset: Record<string, string | undefined> }>;
  querySelector(selector: string): { naturalWidth: number } | null;
  documentElement: { scrollWidth: number };
  activeElement: { getAttribute(name: string): string | null } | null;
};
declare class DataTransfer {
  items: { add(file: File): void };
}

let stack: Stack;
let browser: Browser;

function solidPng(size: number, [r, g, b]: number[]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8 bits, RGB, deflate, no filter choice, no interlace
  const row = Buffer.concat([
    Buffer.from([0]),
    Buffer.from(Array.from({ length: size }, () => [r!, g!, b!]).flat()),
  ]);
  const pixels = deflateSync(Buffer.concat(Array.from({ length: size }, () => row)));
  const signature = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
  return Buffer.concat([
    signature,
    chunk('IHDR', header),
    chunk('IDAT', pixels),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Chromium is required, not optional: a machine without it fails here, saying what to install. */
function chromiumPath(): string {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium was not found at ${CHROMIUM}. The upload page is tested in a real browser: install ` +
        "Debian's chromium (apt-get install -y chromium, as .ci/run does) or set CHROMIUM_PATH to a " +
        'Chromium or Chrome binary.',
    );
  }
  return CHROMIUM;
}

beforeAll(async () => {
  const executablePath = chromiumPath();
  [stack, browser] = await Promise.all([
    startStack({ docs: ['ui-two', 'ui-offline', 'ui-fallback', 'ui-bearer'] }),
    // As root (CI), Chromium's sandbox cannot start.
    chromium.launch({ executablePath, args: ['--no-sandbox'] }),
  ]);
  await mkdir(ARTEFACTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

const pageUrl = (doc: string) =>
  `${stack.host.url}/api/ui?db=${DB}&coll=${COLL}&doc=${encodeURIComponent(doc)}`;

/** The page opened for a document and signed in with the function key; what it logs as errors is kept. */
async function openPage(context: BrowserContext, doc: string): Promise<{ page: Page; errors: string[] }> {
  const page = await context.newPage();
  const errors: string[] = [];
  // A Content-Security-Policy violation or a script error shows here.
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (err) => errors.push(err.message));
  await page.goto(pageUrl(doc));
  await page.getByLabel('Key or token').fill(FUNCTION_KEY);
  return { page, errors };
}

/** Waits until every upload row has ended (done or failed), and returns each row's state and words. */
async function uploadsEnded(page: Page, count: number) {
  await page.waitForFunction(
    (n) =>
      Array.from(document.querySelectorAll('#queue li')).filter((row) =>
        ['done', 'failed'].includes(row.dataset.state ?? ''),
      ).length === n,
    count,
    { timeout: WAIT_MS },
  );
  const rows = await page.locator('#queue li').all();
  return Promise.all(
    rows.map(async (row) => ({
      name: await row.locator('label').textContent(),
      state: await row.getAttribute('data-state'),
      words: await row.locator('.state').textContent(),
      progress: Number(await row.locator('progress').getAttribute('value')),
    })),
  );
}

describe('the upload page', () => {
  it('is served with a strict Content-Security-Policy, nosniff and no inline script', async () => {
    const response = await fetch(`${stack.host.url}/api/ui`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await response.text();
    // Every script has a src; no inline handlers or styles.
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script type="module" src="/api/ui/app.js">']);
    expect(html).not.toMatch(/\son[a-z]+=|\sstyle=|<style/i);
    expect(html).toContain('data-api-base="/api"');

    const script = await fetch(`${stack.host.url}/api/ui/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.headers.get('x-content-type-options')).toBe('nosniff');
    const etag = script.headers.get('etag')!;
    expect((await script.text()).length).toBeGreaterThan(1000);
    const again = await fetch(`${stack.host.url}/api/ui/app.js`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    const style = await fetch(`${stack.host.url}/api/ui/app.css`);
    expect(style.headers.get('content-type')).toBe('text/css; charset=utf-8');

    const missing = await fetch(`${stack.host.url}/api/ui/nothing.js`);
    expect(missing.status).toBe(404);
    expect((await json(missing)).code).toBe('NotFound');
  });

  it("names the API base from where it is served, whatever host.json's route prefix", async () => {
    const bridge = createBridge({
      settings: loadSettings({
        COSMOS_ENDPOINT: 'https://cosmos.invalid',
        COSMOS_KEY: Buffer.alloc(64).toString('base64'),
        AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      }),
    });
    try {
      const page = ROUTES.find((route) => route.name === 'uploadPage')!;
      for (const [path, base] of [
        ['/ui', ''],
        ['/api/ui', '/api'],
        ['/v1/files/ui/', '/v1/files'],
      ]) {
        const html = await (await bridge.serve(page, new Request(`http://localhost${path}`))).text();
        expect(html, path).toContain(`<body data-api-base="${base}">`);
        expect(html, path).toContain(`src="${base}/ui/app.js"`);
      }
    } finally {
      await bridge.close();
    }
  });

  it('is not there in Azure unless UI_ENABLED=true: the JSON 404 of any unknown path', async () => {
    // WEBSITE_SITE_NAME is one of the variables Azure sets on every app (docs/ui.md).
    const azure = await stack.startInstance({ WEBSITE_SITE_NAME: 'bridge-under-test' });
    for (const path of ['/api/ui', '/api/ui/app.js']) {
      const response = await fetch(`${azure.url}${path}`);
      expect(response.status, path).toBe(404);
      expect(await json(response)).toEqual({ code: 'NotFound', message: 'No such route.' });
    }
  });

  it('uploads two files to 100 %, lists them with a thumbnail, and downloads the same bytes', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const { page, errors } = await openPage(context, 'ui-two');
      const text = randomBytes(200 * 1024).toString('base64');
      await page.getByLabel('Choose files to upload').setInputFiles([
        { name: 'photo.png', mimeType: 'image/png', buffer: PNG },
        { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from(text) },
      ]);
      const rows = await uploadsEnded(page, 2);
      expect(rows).toEqual([
        { name: 'photo.png', state: 'done', words: 'Uploaded', progress: 100 },
        { name: 'notes.txt', state: 'done', words: 'Uploaded', progress: 100 },
      ]);
      // The progress bars are named by their file for screen readers.
      expect(await page.getByRole('progressbar', { name: 'notes.txt' }).getAttribute('aria-valuetext')).toBe(
        '100 %',
      );
      await expect.poll(() => page.getByRole('status').textContent()).toMatch(/uploaded|listed/);

      // Listed after the uploads, the image with a thumbnail fetched with the caller's key.
      const thumbnail = page.getByRole('img', { name: 'Preview of photo.png' });
      await thumbnail.waitFor({ timeout: WAIT_MS });
      await page.waitForFunction(
        () => document.querySelector('img.thumbnail')?.naturalWidth === 24,
        undefined,
        {
          timeout: WAIT_MS,
        },
      );
      expect(await thumbnail.getAttribute('src')).toMatch(/^blob:/);
      await page.getByRole('button', { name: 'Download notes.txt' }).waitFor({ timeout: WAIT_MS });

      const [download] = await Promise.all([
        page.waitForEvent('download', { timeout: WAIT_MS }),
        page.getByRole('button', { name: 'Download notes.txt' }).click(),
      ]);
      expect(download.suggestedFilename()).toBe('notes.txt');
      expect((await readFile(await download.path())).toString()).toBe(text);
      await page.screenshot({ path: join(ARTEFACTS, 'desktop-1280.png'), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('uploads a file dropped on the drop zone', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const { page } = await openPage(context, 'ui-two');
      // A drop as the browser delivers it: a DataTransfer holding a File, made in the page.
      const dataTransfer = await page.evaluateHandle(() => {
        const transfer = new DataTransfer();
        transfer.items.add(new File(['dropped bytes'], 'dropped.txt', { type: 'text/plain' }));
        return transfer;
      });
      await page.dispatchEvent('#drop', 'dragover', { dataTransfer });
      await page.dispatchEvent('#drop', 'drop', { dataTransfer });
      const [row] = await uploadsEnded(page, 1);
      expect(row).toMatchObject({ name: 'dropped.txt', state: 'done', progress: 100 });
      const stored = (await stack.listAttachments('ui-two')).find((a) => a.id === 'dropped.txt');
      expect((await stack.readMedia(String(stored?.media))).toString()).toBe('dropped bytes');
    } finally {
      await context.close();
    }
  });

  it('fits a phone at 390 px: no sideways scrolling, the list shown', async () => {
    const context = await browser.newContext({
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    try {
      const { page, errors } = await openPage(context, 'ui-two');
      await page.getByRole('button', { name: 'Show attachments' }).click();
      await page.getByRole('button', { name: 'Download photo.png' }).waitFor({ timeout: WAIT_MS });
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      await page.screenshot({ path: join(ARTEFACTS, 'phone-390.png'), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('pauses and resumes from the keyboard, and says in words why an upload failed', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const { page } = await openPage(context, 'ui-two');
      await page.getByText('Upload options').click();
      await page.getByLabel('Chunk size (KiB)').fill('64');
      // The second chunk waits in the browser until the pause has been asked for, so the pause
      // comes in the middle of the upload whatever the machine's speed.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let reached!: () => void;
      const secondChunk = new Promise<void>((resolve) => (reached = resolve));
      let patches = 0;
      await context.route('**/api/uploads/**', async (route) => {
        if (route.request().method() === 'PATCH' && ++patches === 2) {
          reached();
          await held;
        }
        // The held request was given up by the pause: nothing to send on then.
        await route.fallback().catch(() => undefined);
      });
      const bytes = randomBytes(256 * 1024);
      await page
        .getByLabel('Choose files to upload')
        .setInputFiles([{ name: 'paused.bin', mimeType: 'application/octet-stream', buffer: bytes }]);
      await secondChunk;
      await page.getByRole('button', { name: 'Pause paused.bin' }).click();
      const row = page.locator('#queue li');
      expect(await row.getAttribute('data-state')).toBe('paused');
      // One chunk of four was through (the second may have shown some progress before it was held).
      const pausedAt = Number(await row.locator('progress').getAttribute('value'));
      expect(pausedAt).toBeGreaterThanOrEqual(25);
      expect(pausedAt).toBeLessThan(50);
      expect(await row.locator('.state').textContent()).toBe(`Paused at ${pausedAt} %`);
      // The pause button went away; the keyboard focus went to the resume button in its place.
      expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe(
        'Resume paused.bin',
      );
      release();
      await context.unrouteAll({ behavior: 'ignoreErrors' });
      await page.keyboard.press('Enter');
      const [done] = await uploadsEnded(page, 1);
      expect(done).toMatchObject({ name: 'paused.bin', state: 'done', progress: 100 });
      const stored = (await stack.listAttachments('ui-two')).find((a) => a.id === 'paused.bin');
      expect(sha256(await stack.readMedia(String(stored?.media)))).toBe(sha256(bytes));

      // The same name again: the bridge's own words (409 Conflict) in the row, and a retry offered.
      await page
        .getByLabel('Choose files to upload')
        .setInputFiles([{ name: 'paused.bin', mimeType: 'application/octet-stream', buffer: bytes }]);
      const [, again] = await uploadsEnded(page, 2);
      expect(again).toMatchObject({
        state: 'failed',
        words:
          'Attachment "paused.bin" exists already; choose another name, or the id choice unique or upsert.',
      });
      expect(await page.getByRole('button', { name: 'Retry paused.bin' }).isVisible()).toBe(true);
    } finally {
      await context.close();
    }
  });

  it("signs in with a bearer token, and shows the bridge's words when a token is refused", async () => {
    const idp = await startIdentityProvider();
    const signedIn = await stack.startInstance({
      AUTH_JWT_ISSUER: idp.issuer,
      AUTH_JWT_AUDIENCE: AUDIENCE,
      ALLOWED_TARGETS: `${DB}/${COLL}`,
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const page = await context.newPage();
      await page.goto(`${signedIn.url}/api/ui?db=${DB}&coll=${COLL}&doc=ui-bearer`);
      await page.getByLabel('Bearer token').check();
      await page.getByLabel('Key or token').fill('not-a-token');
      await page.getByRole('button', { name: 'Show attachments' }).click();
      const problem = page.getByRole('alert');
      await problem.waitFor({ timeout: WAIT_MS });
      expect(await problem.textContent()).toMatch(/^The attachments could not be listed: \S/);
      expect(await problem.textContent()).not.toContain('status 401');

      await page.getByLabel('Key or token').fill(await idp.token({ sub: 'someone' }));
      await page
        .getByLabel('Choose files to upload')
        .setInputFiles([{ name: 'signed-in.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') }]);
      const [row] = await uploadsEnded(page, 1);
      expect(row).toMatchObject({ name: 'signed-in.txt', state: 'done', progress: 100 });
      await page.getByRole('button', { name: 'Download signed-in.txt' }).waitFor({ timeout: WAIT_MS });
      expect(await problem.isHidden()).toBe(true);
    } finally {
      await context.close();
      await idp.close();
    }
  });

  it('falls back to one multipart POST where the bridge refuses tus', async () => {
    // A real refusal: with no Blob Storage for upload state, the tus creation answers 500
    // ConfigurationError (the queue alone is named, by identity), while multipart uploads still work.
    const noResumable = await stack.startInstance({
      AzureWebJobsStorage: '',
      AzureWebJobsStorage__queueServiceUri: 'https://bridgetest.queue.core.windows.net/',
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const page = await context.newPage();
      await page.goto(`${noResumable.url}/api/ui?db=${DB}&coll=${COLL}&doc=ui-fallback`);
      await page.getByLabel('Key or token').fill(FUNCTION_KEY);
      const methods: string[] = [];
      page.on('response', (response) => {
        if (response.url().includes('/attachments'))
          methods.push(`${response.request().method()} ${response.status()}`);
      });
      const bytes = randomBytes(100 * 1024);
      await page
        .getByLabel('Choose files to upload')
        .setInputFiles([{ name: 'plain.bin', mimeType: 'application/octet-stream', buffer: bytes }]);
      const [row] = await uploadsEnded(page, 1);
      expect(row).toEqual({
        name: 'plain.bin',
        state: 'done',
        words: 'Uploaded (one request)',
        progress: 100,
      });
      // Refused once (not tried again: the same answer would come), then sent whole.
      expect(methods.filter((m) => m.startsWith('POST'))).toEqual(['POST 500', 'POST 201']);
      const stored = (await stack.listAttachments('ui-fallback')).find((a) => a.id === 'plain.bin');
      expect(sha256(await stack.readMedia(String(stored?.media)))).toBe(sha256(bytes));
    } finally {
      await context.close();
    }
  });

  it('resumes a tus upload where it stopped when the network comes back after a cut', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const { page } = await openPage(context, 'ui-offline');
      await page.getByText('Upload options').click();
      await page.getByLabel('Chunk size (KiB)').fill('64');
      const sent: { method: string; offset: number | undefined }[] = [];
      page.on('request', (request) => {
        if (!/\/attachments\/uploads$|\/api\/uploads\//.test(request.url())) return;
        const offset = request.headers()['upload-offset'];
        sent.push({ method: request.method(), offset: offset === undefined ? undefined : Number(offset) });
      });
      // The cut comes at a known point: as the third chunk leaves, the browser goes offline and that
      // request fails as a dropped connection does.
      let patches = 0;
      await context.route('**/api/uploads/**', async (route) => {
        if (route.request().method() === 'PATCH' && ++patches === 3) {
          await context.setOffline(true);
          await route.abort('internetdisconnected');
        } else {
          await route.fallback();
        }
      });
      const bytes = randomBytes(512 * 1024);
      await page
        .getByLabel('Choose files to upload')
        .setInputFiles([{ name: 'big.bin', mimeType: 'application/octet-stream', buffer: bytes }]);
      const row = page.locator('#queue li');
      await page.locator('#queue li[data-state="offline"]').waitFor({ timeout: WAIT_MS });
      expect(await row.locator('.state').textContent()).toBe('Waiting for the network to come back');
      const stoppedAt = Number(await row.locator('progress').getAttribute('value'));
      expect(stoppedAt).toBeGreaterThan(0);
      expect(stoppedAt).toBeLessThan(100);

      await context.unrouteAll();
      await context.setOffline(false);
      const [ended] = await uploadsEnded(page, 1);
      expect(ended).toMatchObject({ state: 'done', progress: 100 });
      // One upload, created once, and continued from what the bridge had rather than from 0.
      expect(sent.filter((r) => r.method === 'POST')).toHaveLength(1);
      const cut = sent.findIndex((r) => r.method === 'PATCH' && r.offset === 2 * 64 * 1024);
      const after = sent.slice(cut + 1);
      expect(after[0]?.method).toBe('HEAD');
      expect(after.find((r) => r.method === 'PATCH')?.offset).toBeGreaterThan(0);
      const stored = (await stack.listAttachments('ui-offline')).find((a) => a.id === 'big.bin');
      expect(sha256(await stack.readMedia(String(stored?.media)))).toBe(sha256(bytes));
    } finally {
      await context.close();
    }
  });
});
