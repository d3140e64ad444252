import { BridgeError } from '../../http/errors.js';
import type { RouteHandler } from '../context.js';
import { UI_ASSETS } from './assets.generated.js';
import { pageHtml } from './page.js';

/**
 * What every answer of the page carries. The page runs only its own script and style; images come from
 * itself or from object URLs of media it fetched (`blob:`); it calls only its own origin, and no other
 * site may frame it.
 */
export const UI_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

/** `GET /api/ui`: the upload page (UI_ENABLED). Static: the page's own requests carry the caller's credentials. */
export const serveUiPage: RouteHandler = (request, _params, { settings }) => {
  requireEnabled(settings.ui.enabled);
  const pathname = new URL(request.url).pathname;
  // The API's base is where the page is, less `/ui` (host.json's route prefix, `/api` by default).
  const base = pathname.replace(/\/ui\/?$/, '');
  return Promise.resolve(answer(request, pageHtml(base), 'text/html; charset=utf-8', undefined));
};

/** `GET /api/ui/{asset}`: the page's script and style, built into the app by scripts/build-ui.mjs. */
export const serveUiAsset: RouteHandler = (request, params, { settings }) => {
  requireEnabled(settings.ui.enabled);
  const asset = Object.hasOwn(UI_ASSETS, params.asset ?? '') ? UI_ASSETS[params.asset!] : undefined;
  if (!asset) throw new BridgeError('NotFound', 'No such file of the upload page.');
  return Promise.resolve(answer(request, asset.body, asset.type, asset.etag));
};

function requireEnabled(enabled: boolean): void {
  // Off, the page is not there at all: the answer any unknown path gets.
  if (!enabled) throw new BridgeError('NotFound', 'No such route.');
}

function answer(request: Request, body: string, type: string, etag: string | undefined): Response {
  const headers: Record<string, string> = {
    ...UI_SECURITY_HEADERS,
    'content-type': type,
    // Checked on every use, so a new deployment's page is never mixed with an old script.
    'cache-control': 'no-cache',
  };
  if (etag) {
    headers.etag = etag;
    const wanted = request.headers.get('if-none-match');
    if (wanted?.split(',').some((tag) => tag.trim() === etag))
      return new Response(null, { status: 304, headers });
  }
  return new Response(request.method === 'HEAD' ? null : body, { status: 200, headers });
}
