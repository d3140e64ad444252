import type { HttpHandler, HttpRequest, HttpResponseInit } from '@azure/functions';

import type { FetchHandler } from './fetch-handler.js';

/**
 * Runs a fetch-style handler as an Azure Functions v4 HTTP handler. With `enableHttpStream` the
 * request body is the live incoming stream and the response body streams back, so nothing here
 * buffers.
 */
export function azureHandler(handler: FetchHandler): HttpHandler {
  return async (request: HttpRequest): Promise<HttpResponseInit> => {
    const hasBody = request.method !== 'GET' && request.method !== 'HEAD' && request.body !== null;
    const response = await handler(
      new Request(request.url, {
        method: request.method,
        headers: request.headers,
        body: hasBody ? (request.body as ReadableStream<Uint8Array>) : null,
        duplex: 'half',
      }),
    );
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    return { status: response.status, headers, body: response.body ?? undefined };
  };
}
