/**
 * net.connect() to a TCP backend, optionally from inside another network namespace: with `netns` (an
 * fd from netnsOpen, runtime/container-netns.ts) the socket is created there by the addon and Node
 * wraps and connects it (a socket keeps the namespace it was created in, network_namespaces(7)). For
 * the JS data path and the readiness probes; the native relay does the same in C (relayConnect).
 */
import { isIP, Socket, connect, type NetConnectOpts } from 'node:net';
import { netnsSocket } from '../native/netns.js';

export interface TcpConnectOptions {
  host: string;
  port: number;
  /** Create the socket inside this network namespace (an open /proc/PID/ns/net). */
  netns?: number;
  allowHalfOpen?: boolean;
  noDelay?: boolean;
  readableHighWaterMark?: number;
  writableHighWaterMark?: number;
}

/**
 * A socket connecting to `o.host:o.port`, as net.connect() returns it: 'connect' or 'error' follows.
 * A failure to create the socket in the namespace (EPERM without CAP_SYS_ADMIN) is emitted as 'error'
 * on the next tick, like a failed connect.
 */
export function connectTcp(o: TcpConnectOptions): Socket {
  const { netns, host, port, ...common } = o;
  if (netns === undefined) return connect({ ...common, host, port } as NetConnectOpts);
  let fd: number;
  try {
    fd = netnsSocket(netns, isIP(host) === 6 ? 6 : 4);
  } catch (err) {
    const s = new Socket(common);
    process.nextTick(() => s.destroy(err as Error));
    return s;
  }
  // The fd is an unconnected TCP socket: Node wraps it as a TCP handle and connect() uses that handle.
  return new Socket({ ...common, fd }).connect({ host, port });
}
