/**
 * A free loopback port for a backend (rootless proxy mode publishes the container port there), TCP or
 * UDP: bind port 0 and read the kernel's choice back, synchronously (this is on the way to spawning podman).
 */
import { PodsockError } from '../errors.js';
import { closeFd, inspectFd, listenSocket } from '../native/fds.js';

/** Throws PodsockError 'PODSOCK_ERR_LISTEN' when no port can be had. */
export function freePort(protocol: 'tcp' | 'udp' = 'tcp'): number {
  const fd = listenSocket(protocol === 'tcp' ? { kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 1 } : { kind: 'udp', host: '127.0.0.1', port: 0 });
  try {
    const port = inspectFd(fd).port;
    if (port === undefined || port === 0) throw new PodsockError('PODSOCK_ERR_LISTEN', 'Cannot pick a free loopback port for the backend');
    return port;
  } finally {
    closeFd(fd);
  }
}
