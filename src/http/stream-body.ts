import type { Readable } from 'node:stream';

/**
 * A Node stream as a web ReadableStream for a Response body, read only as fast as the response is
 * written: one chunk is taken from the source per pull, and nothing is queued ahead (highWaterMark 0).
 * `Readable.toWeb` queued ahead without bound in some Node versions (nodejs/node#46347); a download
 * must not. Cancelling the web stream (the caller left) destroys the source, which closes its upstream
 * connection.
 */
export function streamBody(source: Readable): ReadableStream<Uint8Array> {
  let failed: Error | undefined;
  let ended = false;
  source.on('error', (err) => (failed ??= err));
  source.once('end', () => (ended = true));
  const next = (): Promise<Buffer | null> =>
    new Promise((resolve, reject) => {
      const attempt = () => {
        const err = failed;
        if (err) return finish(() => reject(err));
        const chunk = source.read() as Buffer | null;
        if (chunk !== null) return finish(() => resolve(chunk));
        if (ended || source.readableEnded) return finish(() => resolve(null));
        if (source.destroyed)
          return finish(() => reject(new Error('The media stream closed before its end.')));
      };
      const finish = (settle: () => void) => {
        source.off('readable', attempt);
        source.off('end', attempt);
        source.off('error', attempt);
        source.off('close', attempt);
        settle();
      };
      source.on('readable', attempt);
      source.on('end', attempt);
      source.on('error', attempt);
      source.on('close', attempt);
      attempt();
    });
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const chunk = await next();
        if (chunk === null) controller.close();
        else controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      },
      cancel(reason) {
        source.destroy(reason instanceof Error ? reason : undefined);
      },
    },
    { highWaterMark: 0 },
  );
}
