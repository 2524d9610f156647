// Small servers standing in for the container's application in unit tests.
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Test } from 'tap';

/** Listens `server` on 127.0.0.1, port 0, and resolves with the port the kernel chose. */
export async function listenLoopback(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

export interface Backend {
  server: Server;
  port: number;
  target: { host: string; port: number } | { path: string };
}

/**
 * A server with half-open connections allowed, on 127.0.0.1:0, or on the unix socket `path` when one
 * is given. Every connection goes to `handler`; errors on them are ignored (tests reset connections on
 * purpose). When `t` ends, the connections still open are destroyed and the server is closed.
 * `target` is where to connect (the shape of the addon's ConnectTarget); `port` is 0 for a unix socket.
 */
export async function backend(t: Test, handler: (s: Socket) => void, path?: string): Promise<Backend> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    handler(s);
  });
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  if (path !== undefined) {
    server.listen(path);
    await once(server, 'listening');
    return { server, port: 0, target: { path } };
  }
  const port = await listenLoopback(server);
  return { server, port, target: { host: '127.0.0.1', port } };
}

/** A backend handler: replies 'reply:' + everything it received once the client half-closes, then ends. */
export function replyOnEnd(s: Socket): void {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('end', () => s.end(`reply:${Buffer.concat(chunks).toString()}`));
  s.on('error', () => undefined);
}
