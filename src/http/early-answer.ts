import type { IncomingMessage, ServerResponse } from 'node:http';

/** How long an unread request body may keep its connection open after the answer was sent. */
const LINGER_MS = 5_000;

/**
 * For an answer sent before the request body was fully read (an early 413, 401 or 409): the
 * connection will close after the answer, and whatever the caller still sends is read and dropped
 * for a short while first. Closing with unread bytes would make the kernel send a reset, and many
 * clients then lose the answer they were about to read.
 *
 * Call before `writeHead`; returns the headers to add.
 */
export function prepareEarlyAnswer(req: IncomingMessage, res: ServerResponse): Record<string, string> {
  if (req.complete) return {};
  res.once('finish', () => {
    req.resume();
    const socket = req.socket;
    const timer = setTimeout(() => socket.destroy(), LINGER_MS).unref();
    socket.once('close', () => clearTimeout(timer));
  });
  return { connection: 'close' };
}
