// A bound UDP socket as a raw fd, the way systemd passes a ListenDatagram= socket.
import { inspectFd, listenSocket } from '../../src/native/fds.js';

/** A UDP socket bound to `host` on a free port: its fd (the caller owns it) and the port. */
export function bindUdpFd(host: string): { fd: number; port: number } {
  const fd = listenSocket({ kind: 'udp', host, port: 0 });
  const port = inspectFd(fd).port;
  if (port === undefined) throw new Error(`no port for the UDP socket on ${host}`);
  return { fd, port };
}
