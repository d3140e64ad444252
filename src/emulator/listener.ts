import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';

/** The first byte of every TLS connection: a handshake record. */
const TLS_HANDSHAKE = 0x16;

/**
 * One port for both protocols, as Microsoft's emulator serves `https://localhost:8081` while the
 * bridge talks plain HTTP to the same port: each connection's first byte says which server gets it.
 * The byte is put back, so the chosen server reads the connection from its start.
 */
export function dualProtocolServer(
  http: HttpServer,
  https: HttpsServer | undefined,
): {
  server: Server;
  /**
   * Closes every connection, idle or busy. The HTTP servers never listen themselves, and Node tracks
   * connections only for a server that does, so their `closeAllConnections()` would see none.
   */
  dropConnections(): void;
} {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      (https && chunk[0] === TLS_HANDSHAKE ? https : http).emit('connection', socket);
      socket.resume();
    });
  });
  return {
    server,
    dropConnections() {
      for (const socket of sockets) socket.destroy();
    },
  };
}
