import type { Readable } from 'node:stream';

/**
 * What to send upstream for one part: a part of at most `replayBytes` is read whole, so a throttled
 * create can be sent again; a larger one is streamed once (what was read ahead is put back first).
 * Memory per part stays within `replayBytes`.
 */
export async function replayableOrStream(stream: Readable, replayBytes: number): Promise<Buffer | Readable> {
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const chunk = stream.read() as Buffer | null;
    if (chunk !== null) {
      chunks.push(chunk);
      size += chunk.length;
      if (size > replayBytes) {
        stream.unshift(Buffer.concat(chunks, size));
        return stream;
      }
      continue;
    }
    if (stream.errored) throw stream.errored;
    if (stream.readableEnded) return Buffer.concat(chunks, size);
    if (stream.destroyed) throw new Error('The part stream closed before its end.');
    await nextEvent(stream);
  }
}

/** Resolves on the stream's next 'readable', 'end', 'error' or 'close', whichever comes first. */
function nextEvent(stream: Readable): Promise<void> {
  const events = ['readable', 'end', 'error', 'close'] as const;
  return new Promise((resolve) => {
    const done = () => {
      for (const event of events) stream.off(event, done);
      resolve();
    };
    for (const event of events) stream.on(event, done);
  });
}
