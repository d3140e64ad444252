// A plain TCP pass-through (`node:net`, one pipe each way): the most any Node proxy between client and
// sink can do on this machine. Usage: TARGET=http://127.0.0.1:<port> PORT=<port|0> node tcp-proxy.js
import { connect, createServer, type Socket } from 'node:net';

const target = new URL(process.env.TARGET ?? '');
const server = createServer((client: Socket) => {
  const upstream = connect(Number(target.port), target.hostname);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  for (const socket of [client, upstream]) {
    socket.once('error', close);
    socket.once('close', close);
  }
  client.pipe(upstream);
  upstream.pipe(client);
});

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  console.log(`TCP pass-through listening on http://127.0.0.1:${port} -> ${target.origin}`);
});
process.once('SIGTERM', () => process.exit(0));
