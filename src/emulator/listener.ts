import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { Duplex } from 'node:stream';

/** The first byte of every TLS connection: a handshake record. */
const TLS_HANDSHAKE = 0x16;

/**
 * One port for both protocols, as Microsoft's emulator serves `https://localhost:8081` while the
 * bridge talks plain HTTP to the same port: each connection's first byte says which server gets it.
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
      if (https && chunk[0] === TLS_HANDSHAKE) {
        https.emit('connection', replaying(socket, chunk));
      } else {
        // The HTTP parser reads the socket as a stream, so the byte can simply be put back.
        socket.unshift(chunk);
        http.emit('connection', socket);
        socket.resume();
      }
    });
  });
  return {
    server,
    dropConnections() {
      for (const socket of sockets) socket.destroy();
    },
  };
}

/**
 * The socket as a stream that starts with the bytes already read. A TLS socket built on a plain
 * socket takes over its file handle and would never see bytes put back with `unshift`; built on a
 * stream, it reads through it.
 */
function replaying(socket: Socket, first: Buffer): Duplex {
  const stream = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(err, callback) {
      socket.destroy(err ?? undefined);
      callback(err);
    },
  });
  stream.push(first);
  socket.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) socket.pause();
  });
  socket.once('end', () => stream.push(null));
  socket.once('error', (err) => stream.destroy(err));
  socket.once('close', () => stream.destroy());
  return stream;
}
