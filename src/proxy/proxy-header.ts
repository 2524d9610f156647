/**
 * The PROXY protocol header (HAProxy's "The PROXY protocol", versions 1 and 2,
 * https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt): what podsock sends to a backend before
 * the client's first byte so that the app sees the client's address instead of podsock's. Pure: the
 * addresses come in as text, the header goes out as bytes.
 *
 * - v1 (section 2.1) is one text line: `PROXY TCP4|TCP6 src dst sport dport\r\n`, or `PROXY UNKNOWN\r\n`
 *   for a client that is not IPv4 or IPv6 (a unix socket client), at most 107 bytes.
 * - v2 (section 2.2) is binary: the 12-byte signature, version and command, family and transport, a
 *   big-endian length and the addresses (12 bytes for IPv4, 36 for IPv6, 216 for unix).
 *
 * Both addresses of one header are in one family (the spec has one family byte): an IPv4-mapped IPv6
 * address (`::ffff:a.b.c.d`, what a dual-stack listener reports for an IPv4 client) is written as IPv4
 * when the other address is IPv4 too, and an IPv4 address as `::ffff:a.b.c.d` when the other is a
 * genuine IPv6 address.
 */
import { PodsockError, q } from '../errors.js';
import { isIP } from '../ip.js';

/** A TCP/UDP endpoint (IPv4 or IPv6 literal, a zone suffix `%eth0` is dropped) or a unix socket path. */
export type HeaderAddress = { host: string; port: number } | { path: string };

/** What a v2 header describes: a stream (TCP, unix stream) or a datagram flow (UDP, unix datagram). */
export type HeaderTransport = 'stream' | 'dgram';

/** The 12 bytes every v2 header starts with (section 2.2). */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** Longest v1 line, CRLF included (section 2.1: "a receiver ... 107 characters"). */
export const V1_MAX_LENGTH = 107;

/** Bytes of one unix address in a v2 header (section 2.2: `uint8_t src_addr[108]`, as sun_path). */
export const V2_UNIX_ADDRESS_LENGTH = 108;

const V2_VERSION_PROXY = 0x21;
const V2_VERSION_LOCAL = 0x20;
const AF_UNSPEC = 0x00;
const AF_INET = 0x10;
const AF_INET6 = 0x20;
const AF_UNIX = 0x30;
const TRANSPORT_BYTE: Record<HeaderTransport, number> = { stream: 0x01, dgram: 0x02 };

/** The two endpoints as bytes of one family, or null when they have no common family (or no address). */
type Pair =
  | { family: 4 | 6; src: Buffer; dst: Buffer; srcPort: number; dstPort: number; srcText: string; dstText: string }
  | { family: 'unix'; src: Buffer; dst: Buffer };

/**
 * The v1 header for a TCP connection from `src` (the client) to `dst` (the address it connected to):
 * `PROXY TCP4 ...` or `PROXY TCP6 ...`, and `PROXY UNKNOWN\r\n` when either is a unix socket or null
 * (section 2.1: "UNKNOWN ... the receiver must ... ignore anything presented before the CRLF"). Throws
 * PODSOCK_ERR_INTERNAL for a host that is not an IP literal or a port out of 0-65535.
 */
export function encodeV1(src: HeaderAddress | null, dst: HeaderAddress | null): Buffer {
  const pair = pairOf(src, dst);
  if (pair === null || pair.family === 'unix') return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const line = `PROXY TCP${pair.family} ${pair.srcText} ${pair.dstText} ${pair.srcPort} ${pair.dstPort}\r\n`;
  return Buffer.from(line, 'latin1');
}

export interface V2Options {
  /** 'stream' (default): TCP or unix stream; 'dgram': UDP or unix datagram (one header per datagram). */
  transport?: HeaderTransport;
  /**
   * The LOCAL command: a connection the sender made on its own (section 2.2: "health checks"), with no
   * address (family UNSPEC). src and dst must then be null.
   */
  local?: boolean;
}

/**
 * The v2 header for `src` (the client) and `dst` (the address it reached): command PROXY with family
 * INET (0x11, 0x12 for dgram), INET6 (0x21, 0x22) or UNIX (0x31, 0x32; each path as sun_path in 108
 * bytes, an abstract name `@name` as a leading NUL, unix(7)); family UNSPEC (0x00) with no address when
 * either is null or the two have no family in common; LOCAL with UNSPEC when `opts.local`. Throws
 * PODSOCK_ERR_INTERNAL for a host that is not an IP literal, a port out of range or a path longer than
 * 108 bytes.
 */
export function encodeV2(src: HeaderAddress | null, dst: HeaderAddress | null, opts: V2Options = {}): Buffer {
  const transport = opts.transport ?? 'stream';
  if (transport !== 'stream' && transport !== 'dgram') throw bad(`transport ${q(transport)}`, "'stream' or 'dgram'");
  if (opts.local === true) {
    if (src !== null || dst !== null) throw bad('a LOCAL header with addresses', 'src and dst null (LOCAL carries no address)');
    return v2Header(V2_VERSION_LOCAL, AF_UNSPEC, Buffer.alloc(0));
  }
  const pair = pairOf(src, dst);
  const t = TRANSPORT_BYTE[transport];
  if (pair === null) return v2Header(V2_VERSION_PROXY, AF_UNSPEC, Buffer.alloc(0));
  if (pair.family === 'unix') return v2Header(V2_VERSION_PROXY, AF_UNIX | t, Buffer.concat([pair.src, pair.dst]));
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(pair.srcPort, 0);
  ports.writeUInt16BE(pair.dstPort, 2);
  return v2Header(V2_VERSION_PROXY, (pair.family === 4 ? AF_INET : AF_INET6) | t, Buffer.concat([pair.src, pair.dst, ports]));
}

function v2Header(versionCommand: number, familyTransport: number, addresses: Buffer): Buffer {
  const head = Buffer.alloc(16);
  V2_SIGNATURE.copy(head, 0);
  head[12] = versionCommand;
  head[13] = familyTransport;
  head.writeUInt16BE(addresses.length, 14); // network byte order (section 2.2)
  return Buffer.concat([head, addresses]);
}

function pairOf(src: HeaderAddress | null, dst: HeaderAddress | null): Pair | null {
  if (src === null || dst === null) return null;
  if ('path' in src || 'path' in dst) {
    if (!('path' in src) || !('path' in dst)) return null;
    return { family: 'unix', src: unixBytes(src.path), dst: unixBytes(dst.path) };
  }
  const s = ipOf(src);
  const d = ipOf(dst);
  const srcPort = portOf(src.port);
  const dstPort = portOf(dst.port);
  // One family for both (see the module comment): IPv4 when both are IPv4 or IPv4-mapped.
  const s4 = s.v4 ?? null;
  const d4 = d.v4 ?? null;
  if (s4 !== null && d4 !== null) return { family: 4, src: s4, dst: d4, srcPort, dstPort, srcText: v4Text(s4), dstText: v4Text(d4) };
  return { family: 6, src: s.v6, dst: d.v6, srcPort, dstPort, srcText: v6Text(s), dstText: v6Text(d) };
}

interface Ip {
  /** The four bytes of an IPv4 or IPv4-mapped IPv6 address, else undefined. */
  v4?: Buffer;
  /** The 16 bytes (an IPv4 address as ::ffff:a.b.c.d). */
  v6: Buffer;
  /** The text of an IPv6 literal, zone dropped; undefined for IPv4. */
  text6?: string;
}

function ipOf(a: { host: string }): Ip {
  const host = a.host.replace(/%.*$/, '');
  const kind = isIP(a.host);
  if (kind === 4) {
    const v4 = Buffer.from(host.split('.').map(Number));
    return { v4, v6: Buffer.concat([Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]), v4]) };
  }
  if (kind === 6) {
    const v6 = parseV6(host);
    const mapped = v6.subarray(0, 12).equals(Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]));
    return mapped ? { v4: v6.subarray(12), v6, text6: host.toLowerCase() } : { v6, text6: host.toLowerCase() };
  }
  throw bad(`host ${q(a.host)}`, 'an IPv4 or IPv6 address');
}

/** 16 bytes of an IPv6 literal that isIP() accepted (RFC 4291 section 2.2 text forms). */
function parseV6(host: string): Buffer {
  let text = host;
  const words: number[] = [];
  const tail: number[] = [];
  // An embedded IPv4 address in the last 32 bits (RFC 4291 2.2, form 3).
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const b = (dotted[1] as string).split('.').map(Number);
    tail.push(((b[0] as number) << 8) | (b[1] as number), ((b[2] as number) << 8) | (b[3] as number));
    text = text.slice(0, -(dotted[1] as string).length);
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
  }
  const gap = text.indexOf('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((w) => parseInt(w, 16)));
  if (gap === -1) words.push(...parse(text), ...tail);
  else {
    const head = parse(text.slice(0, gap));
    const rest = [...parse(text.slice(gap + 2)), ...tail];
    words.push(...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest);
  }
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

function v4Text(b: Buffer): string {
  return [...b].join('.');
}

/** v1's TCP6 address: the literal as given (zone dropped), an IPv4 one as ::ffff:a.b.c.d. */
function v6Text(ip: Ip): string {
  return ip.text6 ?? `::ffff:${v4Text(ip.v4 as Buffer)}`;
}

function portOf(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw bad(`port ${q(port)}`, 'an integer from 0 to 65535');
  return port;
}

/** sun_path in 108 bytes, NUL-padded; '@name' is the abstract name NUL + name (unix(7)); '' unnamed. */
function unixBytes(path: string): Buffer {
  const name = path.startsWith('@') ? Buffer.concat([Buffer.from([0]), Buffer.from(path.slice(1), 'utf8')]) : Buffer.from(path, 'utf8');
  if (name.length > V2_UNIX_ADDRESS_LENGTH) throw bad(`unix path ${q(path)}`, `at most ${V2_UNIX_ADDRESS_LENGTH} bytes`);
  const out = Buffer.alloc(V2_UNIX_ADDRESS_LENGTH);
  name.copy(out);
  return out;
}

function bad(what: string, expected: string): PodsockError {
  return new PodsockError('PODSOCK_ERR_INTERNAL', `Cannot encode a PROXY protocol header for ${what}: expected ${expected}`);
}
