// CORS as Core Tools applies `Host.CORS` and `Host.CORSCredentials` from local.settings.json: ASP.NET
// Core's CORS middleware with WithOrigins(origins).AllowAnyHeader().AllowAnyMethod() (and
// AllowCredentials), in front of the Functions host. A preflight is answered 204 right there.
import type { IncomingMessage } from 'node:http';
import { HostConfigError } from './config.js';

export interface CorsPolicy {
  anyOrigin: boolean;
  /** Lower-cased scheme and host, as CorsPolicyBuilder.WithOrigins normalizes them. */
  origins: string[];
  credentials: boolean;
}

export function corsPolicy(cors: string | undefined, credentials: boolean): CorsPolicy | undefined {
  if (cors === undefined || cors === '') return undefined;
  const origins = cors.split(',').filter((origin) => origin !== '');
  if (origins.length === 0) return undefined;
  const anyOrigin = origins.includes('*');
  if (anyOrigin && credentials) {
    // ASP.NET Core refuses this policy (CorsService.EvaluatePolicy throws).
    throw new HostConfigError(
      'Host.CORS "*" cannot be combined with Host.CORSCredentials: the CORS protocol does not allow a wildcard origin with credentials.',
    );
  }
  return { anyOrigin, origins: origins.map(normalizeOrigin), credentials };
}

function normalizeOrigin(origin: string): string {
  try {
    const url = new URL(origin);
    const rest = origin.slice(url.protocol.length + 2 + url.host.length);
    return `${url.protocol}//${url.host}`.toLowerCase() + rest;
  } catch {
    return origin.toLowerCase();
  }
}

export interface CorsResult {
  /** An OPTIONS request with Access-Control-Request-Method: answered 204 by the middleware. */
  preflight: boolean;
  /** Headers for the answer (none when the origin is not allowed). */
  headers: [string, string][];
}

/** CorsService.EvaluatePolicy and ApplyResult for one request. */
export function evaluateCors(policy: CorsPolicy, req: IncomingMessage): CorsResult {
  const origin = req.headers.origin;
  const requestMethod = req.headers['access-control-request-method'];
  const preflight = req.method === 'OPTIONS' && requestMethod !== undefined;
  const headers: [string, string][] = [];
  const allowed =
    origin !== undefined && origin !== '' && (policy.anyOrigin || policy.origins.includes(origin));
  if (allowed) {
    headers.push(['Access-Control-Allow-Origin', policy.anyOrigin ? '*' : origin]);
    if (policy.credentials) headers.push(['Access-Control-Allow-Credentials', 'true']);
    if (preflight) {
      const requestHeaders = commaSeparated(req.headers['access-control-request-headers']);
      if (requestHeaders.length > 0) headers.push(['Access-Control-Allow-Headers', requestHeaders.join(',')]);
      headers.push(['Access-Control-Allow-Methods', requestMethod]);
    }
    const varyByOrigin = policy.anyOrigin ? policy.credentials : policy.origins.length > 1;
    if (varyByOrigin) headers.push(['Vary', 'Origin']);
  }
  return { preflight, headers };
}

function commaSeparated(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}
