import { deleteAttachment } from './features/attachment/delete.js';
import { readAttachment } from './features/attachment/read.js';
import { replaceAttachment } from './features/attachment/replace.js';
import { createAttachments } from './features/create/route.js';
import type { RouteHandler, RouteParams } from './features/context.js';
import { notFound } from './features/fallback/route.js';
import { describeApi } from './features/openapi/route.js';
import { createUpload, serveUpload } from './features/uploads/route.js';
import { listAttachments } from './features/list/route.js';
import { downloadMedia } from './features/media/route.js';
import { serveUiAsset, serveUiPage } from './features/ui/route.js';
import { receiveWebhook } from './features/webhook/route.js';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';
const ALL_METHODS: readonly HttpMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/**
 * Who may call a route. `caller`: a function key (checked by the Functions host), or with end-user
 * sign-in a bearer token or App Service principal (checked by the core). `public`: anyone; the route
 * proves the caller itself (a webhook signature).
 */
export type Access = 'caller' | 'public';

export interface Route {
  /** The function's name in Azure. */
  name: string;
  methods: readonly HttpMethod[];
  /** The Functions route template, below the prefix host.json sets (`extensions.http.routePrefix`). */
  route: string;
  access: Access;
  handle: RouteHandler;
  /**
   * false: left out of the methods a 405 names. Routes match at the end of a path, and a short
   * template (`ui`) would otherwise claim unrelated paths ending like it (a document named `ui`).
   */
  namedInAllow?: false;
}

/**
 * The one route table: `functions/index.ts` registers each entry with the Functions host, and the
 * core serves them. A new route is an entry here and a feature folder.
 */
const FEATURES: readonly Route[] = [
  {
    name: 'createAttachments',
    methods: ['POST'],
    route: 'dbs/{db}/colls/{coll}/docs/{doc}/attachments',
    access: 'caller',
    handle: createAttachments,
  },
  {
    name: 'listAttachments',
    methods: ['GET'],
    route: 'dbs/{db}/colls/{coll}/docs/{doc}/attachments',
    access: 'caller',
    handle: listAttachments,
  },
  // HEAD is named wherever GET is: the Functions host answers HEAD on a GET-only route with 404.
  {
    name: 'readAttachment',
    methods: ['GET', 'HEAD'],
    route: 'dbs/{db}/colls/{coll}/docs/{doc}/attachments/{id}',
    access: 'caller',
    handle: readAttachment,
  },
  {
    name: 'replaceAttachment',
    methods: ['PUT'],
    route: 'dbs/{db}/colls/{coll}/docs/{doc}/attachments/{id}',
    access: 'caller',
    handle: replaceAttachment,
  },
  {
    name: 'deleteAttachment',
    methods: ['DELETE'],
    route: 'dbs/{db}/colls/{coll}/docs/{doc}/attachments/{id}',
    access: 'caller',
    handle: deleteAttachment,
  },
  {
    name: 'downloadMedia',
    methods: ['GET', 'HEAD'],
    route: 'dbs/{db}/colls/{coll}/docs/{doc}/attachments/{id}/media',
    access: 'caller',
    handle: downloadMedia,
  },
  {
    name: 'createUpload',
    methods: ['POST', 'OPTIONS'],
    route: 'dbs/{db}/colls/{coll}/docs/{doc}/attachments/uploads',
    access: 'caller',
    handle: createUpload,
  },
  {
    // POST too: tus clients that cannot send PATCH or DELETE use X-HTTP-Method-Override.
    name: 'resumableUpload',
    methods: ['HEAD', 'PATCH', 'DELETE', 'GET', 'OPTIONS', 'POST'],
    route: 'uploads/{uploadId}',
    access: 'caller',
    handle: serveUpload,
  },
  {
    name: 'webhookAttachments',
    methods: ['POST'],
    route: 'webhooks/dbs/{db}/colls/{coll}/docs/{doc}/attachments',
    access: 'public',
    handle: receiveWebhook,
  },
  {
    // The upload page (UI_ENABLED): static, so public; its own requests carry the caller's credentials.
    name: 'uploadPage',
    methods: ['GET', 'HEAD'],
    route: 'ui',
    access: 'public',
    handle: serveUiPage,
    namedInAllow: false,
  },
  {
    name: 'uploadPageAsset',
    methods: ['GET', 'HEAD'],
    route: 'ui/{asset}',
    access: 'public',
    handle: serveUiAsset,
    namedInAllow: false,
  },
  {
    // The OpenAPI description of every route here (src/features/openapi/description.ts).
    name: 'openApiDescription',
    methods: ['GET', 'HEAD'],
    route: 'openapi.json',
    access: 'public',
    handle: describeApi,
  },
];

/**
 * The routes' own entries, then a catch-all (the host prefers every literal and parameter segment to
 * it), so that a wrong path or method gets a JSON answer like every other refusal.
 */
export const ROUTES: readonly Route[] = [
  ...FEATURES,
  {
    name: 'fallback',
    methods: ALL_METHODS,
    route: '{*path}',
    access: 'public',
    handle: notFound(allowedMethods),
  },
];

/**
 * The methods the routes of a path take, for a 405's Allow. Routes match at the end of the path
 * whatever prefix comes before it, so of those that match, only the longest templates count (the
 * webhook route's path also ends like the create route's).
 */
function allowedMethods(pathname: string): HttpMethod[] {
  const matching = FEATURES.filter((route) => route.namedInAllow !== false && paramsOf(route, pathname));
  const longest = Math.max(0, ...matching.map((route) => route.route.split('/').length));
  const methods = matching
    .filter((route) => route.route.split('/').length === longest)
    .flatMap((route) => route.methods);
  return ALL_METHODS.filter((method) => methods.includes(method));
}

/**
 * The route's parameters in a request path, raw (percent-encoded as sent), matched at the end of the
 * path whatever prefix comes before it. The core reads them from the URL rather than from what the
 * host passes, which arrives decoded (and, in streaming mode, mixed with query keys).
 */
export function paramsOf(route: Route, pathname: string, whole = false): RouteParams | undefined {
  const { names, anywhere, atStart } = matcherOf(route);
  const match = (whole ? atStart : anywhere).exec(pathname);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  names.forEach((name, i) => (params[name] = match[i + 1]!));
  return params;
}

interface RouteMatcher {
  names: string[];
  /** Matches at the end of a path whatever prefix comes before it. */
  anywhere: RegExp;
  /** Matches a path that is the route and nothing else (the route prefix taken off). */
  atStart: RegExp;
}

/** Compiled once per route: every request matches against the table, some more than once. */
const matchers = new WeakMap<Route, RouteMatcher>();

function matcherOf(route: Route): RouteMatcher {
  let matcher = matchers.get(route);
  if (matcher) return matcher;
  const names: string[] = [];
  const pattern = route.route
    .split('/')
    .map((segment) => {
      const param = /^\{(\*?)(\w+)\}$/.exec(segment);
      if (!param) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(param[2]!);
      return param[1] ? '(.*)' : '([^/]+)';
    })
    .join('/');
  matcher = {
    names,
    anywhere: new RegExp(`(?:^|/)/?${pattern}/?$`),
    atStart: new RegExp(`^/?${pattern}/?$`),
  };
  matchers.set(route, matcher);
  return matcher;
}

/** The route a path and method reach under a route prefix, as the Functions host would route it. */
export function routeFor(method: string, pathname: string, prefix: string): Route {
  const base = prefix === '' ? '' : `/${prefix}`;
  const rest = pathname.startsWith(`${base}/`) ? pathname.slice(base.length) : undefined;
  const matching = rest === undefined ? [] : FEATURES.filter((route) => paramsOf(route, rest, true));
  return matching.find((route) => route.methods.includes(method as HttpMethod)) ?? ROUTES.at(-1)!;
}
