import { createAttachments } from './features/create/route.js';
import type { RouteHandler, RouteParams } from './features/context.js';
import { receiveWebhook } from './features/webhook/route.js';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

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
}

/**
 * The one route table: `functions/index.ts` registers each entry with the Functions host, and the
 * core serves them. A new route is an entry here and a feature folder.
 */
export const ROUTES: readonly Route[] = [
  {
    name: 'createAttachments',
    methods: ['POST'],
    route: 'dbs/{db}/colls/{coll}/docs/{doc}/attachments',
    access: 'caller',
    handle: createAttachments,
  },
  {
    name: 'webhookAttachments',
    methods: ['POST'],
    route: 'webhooks/dbs/{db}/colls/{coll}/docs/{doc}/attachments',
    access: 'public',
    handle: receiveWebhook,
  },
];

/**
 * The route's parameters in a request path, raw (percent-encoded as sent), matched at the end of the
 * path whatever prefix comes before it. The core reads them from the URL rather than from what the
 * host passes, which arrives decoded (and, in streaming mode, mixed with query keys).
 */
export function paramsOf(route: Route, pathname: string): RouteParams | undefined {
  const names: string[] = [];
  const pattern = route.route
    .split('/')
    .map((segment) => {
      const param = /^\{(\w+)\}$/.exec(segment);
      if (!param) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(param[1]!);
      return '([^/]+)';
    })
    .join('/');
  const match = new RegExp(`(?:^|/)${pattern}/?$`).exec(pathname);
  if (!match) return undefined;
  return Object.fromEntries(names.map((name, i) => [name, match[i + 1]!]));
}

/** The route a path and method reach under a route prefix, as the Functions host would route it. */
export function routeFor(
  method: string,
  pathname: string,
  prefix: string,
): { route: Route; params: RouteParams } | undefined {
  const base = prefix === '' ? '/' : `/${prefix}/`;
  if (!pathname.startsWith(base)) return undefined;
  const rest = pathname.slice(base.length - 1);
  let pathMatched: { route: Route; params: RouteParams } | undefined;
  for (const route of ROUTES) {
    const params = paramsOf(route, rest);
    // The whole rest of the path must be the route, not just its end.
    if (!params || !new RegExp(`^/${route.route.replace(/\{\w+\}/g, '[^/]+')}/?$`).test(rest)) continue;
    if (route.methods.includes(method as HttpMethod)) return { route, params };
    pathMatched ??= { route, params };
  }
  return pathMatched;
}
