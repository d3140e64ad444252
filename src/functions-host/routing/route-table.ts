// The host's HTTP routes: one per HTTP trigger, `<routePrefix>/<route>` (the route defaults to the
// function name), ordered as the host's WebJobsRouteBuilder orders them, and tried in that order
// with each function's methods as a constraint: the first route whose template and method match wins.
import type { FunctionMetadata } from '../protocol.js';
import {
  equalsIgnoreCase,
  matchRouteTemplate,
  parseRouteTemplate,
  type RouteTemplate,
} from './route-template.js';

export type AuthLevel = 'anonymous' | 'function' | 'admin';

export interface HttpRoute {
  functionName: string;
  /** The trigger binding's name, which the worker expects the request under. */
  bindingName: string;
  /** The template with the prefix, e.g. `api/items/{id}`. */
  template: RouteTemplate;
  /** Upper case; empty means every method. */
  methods: string[];
  authLevel: AuthLevel;
}

export interface RouteMatch {
  route: HttpRoute;
  values: Record<string, string>;
}

export function httpRoutes(functions: FunctionMetadata[], routePrefix: string): HttpRoute[] {
  const routes: HttpRoute[] = [];
  for (const metadata of functions) {
    for (const [bindingName, binding] of Object.entries(metadata.bindings)) {
      if (binding.type?.toLowerCase() !== 'httptrigger') continue;
      const route = typeof binding.route === 'string' && binding.route !== '' ? binding.route : metadata.name;
      const path = routePrefix ? `${routePrefix}/${route.replace(/^~?\//, '')}` : route;
      const methods = Array.isArray(binding.methods)
        ? binding.methods.map((m) => String(m).toUpperCase())
        : [];
      routes.push({
        functionName: metadata.name,
        bindingName,
        template: parseRouteTemplate(path),
        methods,
        authLevel: toAuthLevel(binding.authLevel),
      });
    }
  }
  // Array.prototype.sort is stable: routes that compare equal keep the app's registration order.
  return routes.sort((x, y) => compareRoutes(x.template, y.template));
}

/** The host's default, for a trigger that names none (function.json apps; the library sets one). */
function toAuthLevel(value: unknown): AuthLevel {
  const level = typeof value === 'string' ? value.toLowerCase() : 'function';
  if (level === 'anonymous' || level === 'admin' || level === 'function') return level;
  if (level === 'system') return 'admin';
  return 'function';
}

/**
 * WebJobsRouteBuilder.RouteComparison: segment by segment (first part only), a literal before a
 * parameter, more inline constraints first, literals in case-insensitive ordinal order; a longer
 * template before a shorter one it extends.
 */
export function compareRoutes(x: RouteTemplate, y: RouteTemplate): number {
  for (let i = 0; i < x.segments.length; i++) {
    if (y.segments.length <= i) return -1;
    const xPart = x.segments[i]![0]!;
    const yPart = y.segments[i]![0]!;
    if (xPart.kind === 'literal' && yPart.kind === 'parameter') return -1;
    if (xPart.kind === 'parameter' && yPart.kind === 'literal') return 1;
    if (xPart.kind === 'parameter' && yPart.kind === 'parameter') {
      const difference = yPart.parameter.constraints.length - xPart.parameter.constraints.length;
      if (difference !== 0) return Math.sign(difference);
    } else if (xPart.kind === 'literal' && yPart.kind === 'literal') {
      const a = xPart.text.toUpperCase();
      const b = yPart.text.toUpperCase();
      if (a !== b) return a < b ? -1 : 1;
    }
  }
  return y.segments.length > x.segments.length ? 1 : 0;
}

export function matchRoute(routes: HttpRoute[], method: string, path: string[]): RouteMatch | undefined {
  const upper = method.toUpperCase();
  for (const route of routes) {
    if (route.methods.length > 0 && !route.methods.includes(upper)) continue;
    const values = matchRouteTemplate(route.template, path);
    if (values) return { route, values };
  }
  return undefined;
}

/** `/admin/...` belongs to the host (only `/admin/warmup` reaches function routes), as in WebJobsRouter. */
export function isAdminPath(path: string[]): boolean {
  return (
    path.length > 0 &&
    equalsIgnoreCase(path[0]!, 'admin') &&
    !(path[1] !== undefined && equalsIgnoreCase(path[1], 'warmup'))
  );
}

/**
 * The request path as Kestrel hands it to routing: percent-decoded except `%2F`, which stays
 * encoded so it never splits a segment, with `.` and `..` segments removed.
 */
export function decodePath(rawPath: string): string[] {
  const segments: string[] = [];
  for (const raw of rawPath.replace(/^\/+/, '').split('/')) {
    const decoded = raw
      .split(/(%2F)/i)
      .map((piece, index) => (index % 2 === 1 ? piece : decodePiece(piece)))
      .join('');
    if (decoded === '.') continue;
    if (decoded === '..') {
      segments.pop();
      continue;
    }
    segments.push(decoded);
  }
  return segments;
}

function decodePiece(piece: string): string {
  if (!piece.includes('%')) return piece;
  try {
    return decodeURIComponent(piece);
  } catch {
    return piece;
  }
}
