import type { IncomingMessage, ServerResponse } from 'node:http';

/** After an early answer, the rest of a request body is read and dropped for at most this long... */
const DRAIN_MS = 5_000;
/** ...and at most this much; past either, the connection is closed. */
const DRAIN_BYTES = 8 * 1024 * 1024;

/**
 * For an answer sent before the request body was fully read (an early 413, 401, 409 or 429): the rest
 * of the body is read and dropped, as Kestrel does, so the caller can finish sending and then read the
 * answer, and the connection stays open for the next request. A body still coming after DRAIN_BYTES or
 * DRAIN_MS has its connection closed. Closing at once instead makes the caller's next write fail
 * (EPIPE), and many clients then never read the answer that was already there.
 *
 * Call before `writeHead`; returns headers to add (none: the connection is kept).
 */
export function prepareEarlyAnswer(req: IncomingMessage, res: ServerResponse): Record<string, string> {
  if (req.complete) return {};
  res.once('finish', () => drainOrClose(req));
  return {};
}

function drainOrClose(req: IncomingMessage): void {
  // The body may have ended while the answer went out: nothing to drain, and no timer on a kept socket.
  if (req.readableEnded) return;
  const socket = req.socket;
  let allowance = DRAIN_BYTES;
  const close = () => {
    done();
    socket.destroy();
  };
  const timer = setTimeout(close, DRAIN_MS).unref();
  // A kept connection serves many requests: leave no listener behind on its socket.
  const done = () => {
    clearTimeout(timer);
    socket.off('close', done);
  };
  // The only reader left: what it reads is dropped.
  req.on('data', (chunk: Buffer) => {
    allowance -= chunk.length;
    if (allowance < 0) close();
  });
  req.once('end', done);
  socket.once('close', done);
  req.resume();
}
