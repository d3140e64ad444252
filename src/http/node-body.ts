import type { Readable } from 'node:stream';

/**
 * Names, on a request's body stream, the Node stream the host reads it from: set by this project's
 * patch of `@azure/functions` (the proxied request, patches/) and by the node:http adapter (the
 * IncomingMessage). Reading that stream directly skips a web stream and the Node stream made back from
 * it (`Readable.fromWeb`), two hand-offs per chunk of every upload.
 */
export const NODE_BODY = Symbol.for('cosmos-attachment-bridge.nodeBody');

type TaggedBody = ReadableStream<Uint8Array> & { [NODE_BODY]?: Readable };

/**
 * The Node stream behind `request.body`, if its host named one and nothing has read the body yet. The
 * web stream is locked from then on, so no other reader can take bytes from under this one.
 */
export function takeNodeBody(request: Request): Readable | undefined {
  const body = request.body as TaggedBody | null;
  const source = body?.[NODE_BODY];
  if (!body || !source || body.locked || request.bodyUsed || source.readableDidRead) return undefined;
  body.getReader();
  return source;
}
