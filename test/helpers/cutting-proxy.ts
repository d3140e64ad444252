import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/** A TCP pass-through that breaks connections as a flaky mobile link does. */
export interface CuttingProxy {
  /** e.g. `http://127.0.0.1:43210`: use it in place of the target's origin. */
  readonly url: string;
  /** Connections cut so far. */
  readonly cuts: number;
  /** Bytes passed from clients to the target so far. */
  readonly bytesUp: number;
  close(): Promise<void>;
}

export interface CuttingProxyOptions {
  /** Where to pass connections to (host and port of an `http://` origin). */
  target: string;
  /** Cut the connection carrying the request bytes each time this many more have gone up. */
  cutEveryBytes?: number;
  /** Or: cut every open connection this often (a link that drops every 30 s, say). */
  cutEveryMs?: number;
}

/**
 * Counts the bytes clients send upstream across all connections and, each time another
 * `cutEveryBytes` have passed, destroys the connection that carried them, both sides at once, as a
 * dropped mobile link would: the server sees its request body break off mid-stream.
 */
export async function startCuttingProxy({
  target,
  cutEveryBytes = Infinity,
  cutEveryMs,
}: CuttingProxyOptions): Promise<CuttingProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let bytesUp = 0;
  let nextCut = cutEveryBytes;
  let cuts = 0;
  const server: Server = createServer((client) => {
    const upstream = connect({ host: hostname, port: Number(port) });
    sockets.add(client).add(upstream);
    let dead = false;
    const cut = () => {
      dead = true;
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => {
      sockets.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('error', cut);
    upstream.on('error', cut);
    client.on('data', (chunk: Buffer) => {
      if (dead) return;
      bytesUp += chunk.length;
      if (bytesUp >= nextCut) {
        nextCut += cutEveryBytes;
        cuts += 1;
        // What came before the cut point goes through; the rest of this chunk is lost with the link.
        const keep = chunk.length - (bytesUp - (nextCut - cutEveryBytes));
        dead = true;
        if (keep > 0) upstream.write(chunk.subarray(0, keep), cut);
        else cut();
        return;
      }
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    });
    upstream.pipe(client);
  });
  const timer =
    cutEveryMs === undefined
      ? undefined
      : setInterval(() => {
          if (sockets.size > 0) cuts += 1;
          for (const socket of sockets) socket.destroy();
        }, cutEveryMs);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    get cuts() {
      return cuts;
    },
    get bytesUp() {
      return bytesUp;
    },
    async close() {
      clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
