/**
 * The PROXY protocol header (proxy-header.ts) for one accepted client, read from its fd: the client is
 * getpeername(2), the address it connected to is getsockname(2) of the accepted socket (the listener's
 * address, or the real local address under a wildcard listener). Both data paths call this once per
 * client, at accept, and send the bytes before anything else on every backend connection they make for it.
 *
 * A unix client gets `PROXY UNKNOWN` in v1 (section 2.1 has no unix family) and, in v2, the PROXY
 * command with family AF_UNIX and both paths, the client's usually unnamed (108 NUL bytes): the spec
 * (section 2.2) makes a receiver that does not implement AF_UNIX fall back to UNSPEC and keep the
 * connection (nginx's ngx_proxy_protocol_v2_read() skips an unsupported family; HAProxy parses AF_UNIX),
 * whereas LOCAL would claim the connection was podsock's own (health checks), which it is not.
 */
import type { ProxyProtocolVersion } from '../config/podsock-values.js';
import { inspectFd, peerAddress } from '../native/fds.js';
import { encodeV1, encodeV2, type HeaderAddress } from './proxy-header.js';

/**
 * The header of `version` for the client connected on `fd`, or null when `version` is 'off'. Throws
 * PODSOCK_ERR_NATIVE when the addresses cannot be read (ENOTCONN: the client already reset).
 */
export function clientHeader(version: ProxyProtocolVersion, fd: number): Buffer | null {
  if (version === 'off') return null;
  const src = headerAddress(peerAddress(fd));
  const dst = headerAddress(inspectFd(fd));
  return version === 'v1' ? encodeV1(src, dst) : encodeV2(src, dst);
}

function headerAddress(a: { host?: string; port?: number; path?: string }): HeaderAddress | null {
  if (a.host !== undefined && a.port !== undefined) return { host: a.host, port: a.port };
  if (a.path !== undefined) return { path: a.path };
  return null;
}
