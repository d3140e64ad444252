import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { prepareEarlyAnswer } from './early-answer.js';
import { NODE_BODY } from './node-body.js';

import type { FetchHandler } from './fetch-handler.js';

/**
 * Serves a fetch-style handler on `node:http`. When the handler answers before reading the whole
 * body (an early 413, say), the answer is sent first and the rest of the body is discarded briefly
 * before the connection closes, so the caller reads the answer rather than a reset.
 */
export function nodeHandler(handler: FetchHandler, onError: (err: unknown) => void) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const aborted = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) aborted.abort();
    });
    const body = bodyOf(req);
    let request: Request;
    try {
      request = new Request(new URL(req.url ?? '/', 'http://localhost'), {
        method: req.method ?? 'GET',
        headers: headersOf(req),
        body: body?.stream ?? null,
        duplex: 'half',
        signal: aborted.signal,
      });
    } catch (err) {
      onError(err);
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: 'BadRequest', message: 'The request could not be read.' }));
      return;
    }
    handler(request)
      .then((response) => send(req, res, response, body))
      .catch((err: unknown) => {
        onError(err);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 'InternalError', message: 'The host failed unexpectedly.' }));
      });
  };
}

interface IncomingBody {
  stream: ReadableStream<Uint8Array>;
  /** Stop feeding the web stream; from now on the rest of the body is discarded. */
  detach(): void;
}

function bodyOf(req: IncomingMessage): IncomingBody | undefined {
  if (req.method === 'GET' || req.method === 'HEAD') return undefined;
  let detached = false;
  let settled = false;
  let reading = false;
  const detach = () => {
    detached = true;
    req.resume();
  };
  // Nothing is read from `req` until the web stream is (high-water mark 0): the core may read `req`
  // itself instead (NODE_BODY), and then this stream must not take bytes from under it.
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (!reading) {
          reading = true;
          listen(controller);
        }
        req.resume();
      },
      cancel() {
        // The core wants no more: discard the rest instead of tearing the socket down under the answer.
        detach();
      },
    },
    { highWaterMark: 0 },
  );
  const listen = (controller: ReadableStreamDefaultController<Uint8Array>) => {
    req.on('data', (chunk: Buffer) => {
      if (detached || settled) return;
      controller.enqueue(chunk);
      if ((controller.desiredSize ?? 0) <= 0) req.pause();
    });
    req.once('end', () => {
      if (detached || settled) return;
      settled = true;
      controller.close();
    });
    const fail = () => {
      if (detached || settled || req.complete) return;
      settled = true;
      controller.error(new Error('The client closed the connection before the request body was complete.'));
    };
    req.on('error', fail);
    req.once('close', fail);
  };
  Object.defineProperty(stream, NODE_BODY, { value: req });
  return { stream, detach };
}

function headersOf(req: IncomingMessage): Headers {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  return headers;
}

async function send(
  req: IncomingMessage,
  res: ServerResponse,
  response: Response,
  body: IncomingBody | undefined,
): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  res.writeHead(response.status, { ...headers, ...prepareEarlyAnswer(req, res) });
  // From here on the core reads nothing more; anything still buffered or arriving is dropped.
  body?.detach();
  if (!response.body) {
    res.end();
  } else if (Number(headers['content-length']) <= SMALL_BODY_BYTES) {
    // A small answer (JSON, mostly) in one write, without a Node stream made from the web stream.
    res.end(Buffer.from(await response.arrayBuffer()));
  } else {
    await pipeline(Readable.fromWeb(response.body), res);
  }
}

/** Answers up to this size are read whole and written at once; larger ones are streamed. */
const SMALL_BODY_BYTES = 64 * 1024;
