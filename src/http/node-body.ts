import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';

/**
 * Names, on a request's body stream, the Node stream the host reads it from: set by this project's
 * patch of `@azure/functions` (the proxied request, patches/) and by the node:http adapter (the
 * IncomingMessage). Reading that stream directly skips a web stream and the Node stream made back from
 * it (`Readable.fromWeb`), two hand-offs per chunk of every upload.
 */
export const NODE_BODY = Symbol.for('cosmos-attachment-bridge.nodeBody');

type TaggedBody = ReadableStream<Uint8Array> & { [NODE_BODY]?: Readable };

/** What this module reads of a request: a web `Request`, or the library's `HttpRequest`. */
type WithBody = Pick<Request, 'bodyUsed'> & { readonly body: NodeReadableStream | ReadableStream | null };

/**
 * The Node stream behind `request.body`, if its host named one and nothing has read the body yet. The
 * web stream is locked from then on, so no other reader can take bytes from under this one.
 */

export function takeNodeBody(request: WithBody): Readable | undefined {
  const body = request.body as TaggedBody | null;
  const source = body?.[NODE_BODY];
  if (!body || !source || body.locked || request.bodyUsed || source.readableDidRead) return undefined;
  body.getReader();
  return source;
}

/** The request's body as a Node stream: the host's own when it names one, else the web stream adapted. */
export function nodeBodyOf(request: WithBody): Readable {
  return (
    takeNodeBody(request) ??
    (request.body ? Readable.fromWeb(request.body as NodeReadableStream<Uint8Array>) : Readable.from([]))
  );
}
