import { jsonResponse } from '../../http/errors.js';
import type { RouteHandler } from '../context.js';
import { openApiDescription } from './description.js';

/**
 * `GET`/`HEAD /api/openapi.json`: the OpenAPI description. Its server is the path the request came
 * under (the route prefix, `/api` by default), relative, so it holds behind any host name or proxy.
 */
export const describeApi: RouteHandler = (request) => {
  const prefix = new URL(request.url).pathname.replace(/\/openapi\.json\/?$/, '');
  const response = jsonResponse(200, openApiDescription(prefix === '' ? '/' : prefix), {
    'cache-control': 'public, max-age=300',
  });
  return Promise.resolve(request.method === 'HEAD' ? new Response(null, response) : response);
};
