import { BridgeError } from '../../http/errors.js';
import type { RequestContext, RouteParams } from '../context.js';

/**
 * Whatever no other route takes (the table's last entry, `{*path}`): a JSON 404, or a 405 naming the
 * methods when the path is a route's but the method is not. The Functions host would answer both
 * with an empty 404.
 */
export function notFound(allowedMethods: (pathname: string) => readonly string[]) {
  return (request: Request, _params: RouteParams, _context: RequestContext): Promise<Response> => {
    const allowed = allowedMethods(new URL(request.url).pathname);
    if (allowed.length > 0) {
      throw new BridgeError('MethodNotAllowed', `This route takes ${allowed.join(', ')}.`, {
        allow: allowed.join(', '),
      });
    }
    throw new BridgeError('NotFound', 'No such route.');
  };
}
