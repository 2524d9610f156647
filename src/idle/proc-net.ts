/**
 * Parsers for the kernel's socket tables `/proc/net/tcp`, `/proc/net/tcp6` and `/proc/net/unix` (proc(5)).
 *
 * Pure: they take the file text and return rows. The kernel's format is stable but podsock does not own it,
 * so a line that does not look like a row is skipped, never thrown on: a surprise in one line must not take
 * idle detection down with it.
 *
 * Row formats, from the kernel sources:
 * - tcp: `net/ipv4/tcp_ipv4.c` `tcp4_seq_show()` / `get_tcp4_sock()` (and `get_openreq4()`, `get_timewait4_sock()`):
 *   `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...`.
 *   Addresses are `%08X:%04X`: the IPv4 address is the network-order `__be32` printed as a host-order integer
 *   (so `0100007F` is 127.0.0.1 on little-endian machines), the port is already in host order.
 * - tcp6: `net/ipv6/tcp_ipv6.c` `get_tcp6_sock()`: the address is four `%08X` words, each a network-order
 *   32-bit word printed in host order. IPv4 clients of a dual-stack listener appear as `::ffff:a.b.c.d`.
 * - unix: `net/unix/af_unix.c` `unix_seq_show()`: `Num RefCount Protocol Flags Type St Inode Path`, Path
 *   absent for unbound sockets and `@name` for abstract ones (NULs in abstract names printed as `@`).
 */


/** One row of `/proc/net/tcp` or `/proc/net/tcp6`. Addresses are in {@link formatIp}'s canonical text form. */
export interface TcpEntry {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** The kernel's TCP state number (`include/net/tcp_states.h`): 1 ESTABLISHED ... 10 LISTEN. */
  state: number;
  /** Bytes queued to send (non-listening sockets). */
  txQueue: number;
  /** Bytes queued to read; for a LISTEN socket, the current accept-queue length. */
  rxQueue: number;
  /** The socket's owner (the uid that created it), as seen from the reader's user namespace. */
  uid: number;
  /** Socket inode; 0 for sockets no process holds yet (connections still in an accept queue, TIME_WAIT). */
  inode: number;
}

/** One row of `/proc/net/unix`. */
export interface UnixEntry {
  refCount: number;
  /** Socket flags; {@link UNIX_FLAG_ACCEPTCON} marks a listening socket. */
  flags: number;
  /** 1 SOCK_STREAM, 2 SOCK_DGRAM, 5 SOCK_SEQPACKET. */
  type: number;
  /** `socket_state`: 1 SS_UNCONNECTED, 2 SS_CONNECTING, 3 SS_CONNECTED, 4 SS_DISCONNECTING. */
  state: number;
  inode: number;
  /** The bound name: a filesystem path, `@name` for an abstract name, or `undefined` when unbound. */
  path: string | undefined;
}

/** TCP states as the kernel numbers them (`include/net/tcp_states.h`). */
export const TCP_STATE = {
  ESTABLISHED: 0x01,
  SYN_SENT: 0x02,
  SYN_RECV: 0x03,
  FIN_WAIT1: 0x04,
  FIN_WAIT2: 0x05,
  TIME_WAIT: 0x06,
  CLOSE: 0x07,
  CLOSE_WAIT: 0x08,
  LAST_ACK: 0x09,
  LISTEN: 0x0a,
  CLOSING: 0x0b,
} as const;

/** `__SO_ACCEPTCON` (`include/linux/net.h`), set in the Flags column of a listening unix socket. */
export const UNIX_FLAG_ACCEPTCON = 0x10000;

// os.endianness() without loading node:os on the start path: the first byte of a 16-bit 1.
const HOST_IS_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const TCP_ROW = /^\s*\d+:\s+([0-9A-Fa-f]+):([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]+):([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]{2})\s+([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8})\s+\S+\s+\S+\s+(\d+)\s+\d+\s+(\d+)/;

/**
 * Parse the text of `/proc/net/tcp` (`v6` false) or `/proc/net/tcp6` (`v6` true) into rows. The header line
 * and any line that does not match the row format (wrong address width for `v6`, truncated line, garbage)
 * are skipped. `littleEndian` is the byte order of the kernel that wrote the text; it defaults to this
 * host's and exists so captured text from either kind of machine can be tested.
 */
export function parseProcNetTcp(text: string, v6: boolean, littleEndian = HOST_IS_LE): TcpEntry[] {
  const hexLength = v6 ? 32 : 8;
  const entries: TcpEntry[] = [];
  for (const line of text.split('\n')) {
    const m = TCP_ROW.exec(line);
    if (m === null) continue;
    const [, localHex, localPortHex, remoteHex, remotePortHex, stateHex, txHex, rxHex, uidText, inodeText] = m;
    if (localHex!.length !== hexLength || remoteHex!.length !== hexLength) continue;
    const local = decodeProcAddress(localHex!, littleEndian);
    const remote = decodeProcAddress(remoteHex!, littleEndian);
    entries.push({
      localAddress: formatIp(local),
      localPort: parseInt(localPortHex!, 16),
      remoteAddress: formatIp(remote),
      remotePort: parseInt(remotePortHex!, 16),
      state: parseInt(stateHex!, 16),
      txQueue: parseInt(txHex!, 16),
      rxQueue: parseInt(rxHex!, 16),
      uid: Number(uidText),
      inode: Number(inodeText),
    });
  }
  return entries;
}

const UNIX_ROW = /^[0-9A-Fa-f]+:\s+([0-9A-Fa-f]{8})\s+[0-9A-Fa-f]{8}\s+([0-9A-Fa-f]{8})\s+([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]{2})\s+(\d+)(?: (.*))?$/;

/**
 * Parse the text of `/proc/net/unix` into rows. The header and malformed lines are skipped. The path is
 * everything after the inode's separating space, so paths with spaces survive; a path containing a newline
 * cannot be told apart from two lines (the kernel prints it raw) and its second half is skipped as malformed.
 */
export function parseProcNetUnix(text: string): UnixEntry[] {
  const entries: UnixEntry[] = [];
  for (const line of text.split('\n')) {
    const m = UNIX_ROW.exec(line);
    if (m === null) continue;
    const [, refHex, flagsHex, typeHex, stateHex, inodeText, path] = m;
    entries.push({
      refCount: parseInt(refHex!, 16),
      flags: parseInt(flagsHex!, 16),
      type: parseInt(typeHex!, 16),
      state: parseInt(stateHex!, 16),
      inode: Number(inodeText),
      path: path === undefined || path === '' ? undefined : path,
    });
  }
  return entries;
}

/** Bytes of an address as printed by the kernel: 8 hex digits (IPv4) or 32 (IPv6), in host-order words. */
function decodeProcAddress(hex: string, littleEndian: boolean): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let word = 0; word < hex.length / 8; word++) {
    // The kernel printed a network-order 32-bit word as a host-order integer.
    const value = parseInt(hex.slice(word * 8, word * 8 + 8), 16);
    for (let i = 0; i < 4; i++) {
      const shift = littleEndian ? 8 * i : 24 - 8 * i;
      bytes[word * 4 + i] = (value >>> shift) & 0xff;
    }
  }
  return bytes;
}

/**
 * Canonical text for a 4- or 16-byte address: dotted quad for IPv4 and for IPv4-mapped IPv6
 * (`::ffff:a.b.c.d` becomes `a.b.c.d`, because that is the same peer reaching a dual-stack listener),
 * RFC 5952 lower-case compressed form for other IPv6 addresses. Two addresses are equal iff their texts are.
 */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return dotted(bytes, 0);
  let leadingZeros = 0;
  while (leadingZeros < 10 && bytes[leadingZeros] === 0) leadingZeros++;
  if (leadingZeros === 10 && bytes[10] === 0xff && bytes[11] === 0xff) return dotted(bytes, 12);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952 4.2: compress the longest run (first one on a tie) of two or more zero groups.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function dotted(bytes: Uint8Array, at: number): string {
  return `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
}

/**
 * Parse an IPv4 or IPv6 literal (an optional `%zone` is ignored, as are surrounding brackets) into its bytes,
 * or return `undefined` when `text` is not an IP literal. Used to compare configured addresses with the
 * kernel's tables through {@link formatIp}.
 */
export function parseIp(text: string): Uint8Array | undefined {
  let s = text.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (!s.includes(':')) return parseIpv4(s);
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    // An embedded dotted quad (`::ffff:1.2.3.4`) stands for the last two groups.
    const v4 = parseIpv4(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    const high = ((v4[0]! << 8) | v4[1]!).toString(16);
    const low = ((v4[2]! << 8) | v4[3]!).toString(16);
    s = `${s.slice(0, lastColon + 1)}${high}:${low}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parseGroups(halves[0]!);
  const rest = halves.length === 2 ? parseGroups(halves[1]!) : [];
  if (head === undefined || rest === undefined) return undefined;
  const explicit = head.length + rest.length;
  let groups: number[];
  if (halves.length === 2) {
    if (explicit > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - explicit).fill(0), ...rest];
  } else {
    if (explicit !== 8) return undefined;
    groups = head;
  }
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}

function parseIpv4(s: string): Uint8Array | undefined {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return Uint8Array.from(parts.map(Number));
}
