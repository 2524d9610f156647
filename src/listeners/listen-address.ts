/**
 * `--listen ADDR` for standalone mode, in the forms of systemd.socket(5) ListenStream=:
 * `/path` (unix), `@name` (abstract unix), `a.b.c.d:port`, `[v6]:port`, `host:port` for localhost,
 * or a bare `port` (all addresses, IPv6 dual-stack like systemd). A `udp:` prefix makes a datagram socket
 * on the same forms of address (ListenDatagram=, served by proxy mode's UDP flows or handed over).
 * An optional `NAME=` prefix gives the
 * socket a name, like FileDescriptorName= (used by `Backend=name=port` and passed as LISTEN_FDNAMES).
 * Pure; errors name the value and the accepted forms.
 */
import { isIP } from '../ip.js';
import { PodsockError, q } from '../errors.js';

export type ListenSpec =
  | { name: string; kind: 'tcp'; host: string; port: number; backlog: number }
  | { name: string; kind: 'udp'; host: string; port: number }
  | { name: string; kind: 'unix'; path: string; backlog: number };

const FORMS = "'/path', '@abstract', '127.0.0.1:8080', '[::1]:8080', 'localhost:8080' or '8080', each IP form also as 'udp:…' for a datagram socket";
const BACKLOG = 4096;

export function parseListenAddress(raw: string): ListenSpec {
  let name = 'listen';
  let addr = raw;
  const named = /^([A-Za-z0-9_.-]{1,255})=(.*)$/.exec(raw);
  if (named !== null) {
    name = named[1] as string;
    addr = named[2] as string;
  }
  const bad = (why: string): PodsockError =>
    new PodsockError('PODSOCK_ERR_USAGE', `Invalid --listen ${q(raw)}: ${why} (expected ${FORMS})`);
  if (addr.startsWith('udp:')) {
    const ip = parseIpAddress(addr.slice(4), bad);
    return { name, kind: 'udp', host: ip.host, port: ip.port };
  }
  if (addr.startsWith('/') || addr.startsWith('@')) {
    if (Buffer.byteLength(addr) > 107) throw bad('a unix socket path must be shorter than 108 bytes');
    if (addr === '@' || addr === '/') throw bad('empty socket name');
    return { name, kind: 'unix', path: addr, backlog: BACKLOG };
  }
  const ip = parseIpAddress(addr, bad);
  return { name, kind: 'tcp', host: ip.host, port: ip.port, backlog: BACKLOG };
}

/** `a.b.c.d:port`, `[v6]:port`, `localhost:port` or a bare `port` ('::', all addresses). */
function parseIpAddress(addr: string, bad: (why: string) => PodsockError): { host: string; port: number } {
  const port = (text: string): number => {
    if (!/^[0-9]{1,5}$/.test(text)) throw bad(`port ${q(text)} is not a number`);
    const n = Number(text);
    if (n < 1 || n > 65535) throw bad(`port ${n} is out of range 1-65535`);
    return n;
  };
  if (/^[0-9]+$/.test(addr)) return { host: '::', port: port(addr) };
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(addr);
  if (v6 !== null) {
    const host = v6[1] as string;
    if (isIP(host) !== 6) throw bad(`${q(host)} is not an IPv6 address`);
    return { host, port: port(v6[2] as string) };
  }
  const i = addr.lastIndexOf(':');
  if (i <= 0) throw bad('no port');
  let host = addr.slice(0, i);
  if (host === 'localhost') host = '127.0.0.1';
  if (isIP(host) !== 4) throw bad(`${q(host)} is not an IPv4 address (write IPv6 as '[addr]:port')`);
  return { host, port: port(addr.slice(i + 1)) };
}
