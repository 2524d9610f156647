/**
 * Counting connections on sockets podsock handed over to the container (handover mode idle detection).
 *
 * After the hand-off the container owns accept(), so podsock sees no connections itself.
 * The kernel does: every connection on a listening socket, accepted or still queued,
 * is a row in /proc/net/{tcp,tcp6,unix}. This module counts those rows; the idle timer decides what a
 * count of zero means.
 *
 * What the kernel shows, observed on Linux 6.18 (and consistent with the sources cited in proc-net.ts):
 * - TCP: a connection still in the accept queue is already a full ESTABLISHED row (inode 0 until a process
 *   accepts it), and the listener's rx_queue is the length of that queue. Counting the rows therefore
 *   already counts the queue; adding rx_queue would count the queued connections twice. The listener's
 *   tx_queue is 0 in /proc/net/tcp (the backlog limit shown by `ss` comes from inet_diag, not from here).
 * - TCP, dual stack: an IPv4 client of a `::` listener is a tcp6 row with local address
 *   `::ffff:127.0.0.1`; while still in SYN_RECV its request socket may be printed in the IPv4 table
 *   instead (tcp_v6_conn_request hands v4 SYNs to tcp_v4_conn_request). Both tables are read and
 *   addresses compared after mapping `::ffff:a.b.c.d` to `a.b.c.d`, so either form matches.
 * - unix: the listener is the row with Flags 00010000 (__SO_ACCEPTCON), St 01. A connection waiting in
 *   its accept queue is a row with the SAME path, Flags 0, St 02 and inode 0; once accepted it keeps the
 *   path, gets an inode and St 03; it stays (St 03) after the client closes until the server side closes
 *   too, the unix analogue of CLOSE_WAIT. Client sockets are unbound and show no path. Abstract names
 *   print as `@name`.
 *
 * The tables are those of the reading process's network namespace (/proc/net is /proc/self/net).
 * Sockets created by systemd live in the host namespace and their connections stay there even when the
 * container that accepts them has its own, so podsock reads the right tables from the host namespace.
 */

import { readFile } from 'node:fs';
import { join } from 'node:path';
import { PodsockError, q } from '../errors.js';
import {
  TCP_STATE,
  UNIX_FLAG_ACCEPTCON,
  formatIp,
  parseIp,
  parseProcNetTcp,
  parseProcNetUnix,
  type TcpEntry,
  type UnixEntry,
} from './proc-net.js';

/**
 * A handed-over listening socket, as inspectFd describes it. A unix socket's `fd` (podsock's copy of the
 * listener) lets readConnectionCount's `countUnix` count it without /proc/net/unix.
 */
export type WatchedSocket = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string; fd?: number };

/** Counts the connections of unix listeners given by fd (native/sock-diag.ts unixConnections). */
export type UnixCounter = (fds: readonly number[]) => number;

/** The raw text of the three tables; a table that was not needed may be the empty string. */
export interface ProcNetTables {
  tcp: string;
  tcp6: string;
  unix: string;
}

// Connections the application still has to deal with. SYN_RECV: handshake under way, it will land in the
// accept queue. CLOSE_WAIT: the client hung up but the application has not closed its end yet. The states
// after the application's close() (FIN_WAIT1/2, TIME_WAIT, CLOSE, LAST_ACK, CLOSING) are the kernel's
// business alone, so they do not keep the service busy.
const ACTIVE_TCP_STATES: ReadonlySet<number> = new Set([TCP_STATE.ESTABLISHED, TCP_STATE.SYN_RECV, TCP_STATE.CLOSE_WAIT]);

// Connection-oriented unix types: SOCK_STREAM, SOCK_SEQPACKET. A bound SOCK_DGRAM socket is a row with
// the path too, but it is the socket itself, not a connection.
const CONNECTED_UNIX_TYPES: ReadonlySet<number> = new Set([1, 5]);
// SS_CONNECTING (queued, not accepted yet) and SS_CONNECTED (accepted).
const ACTIVE_UNIX_STATES: ReadonlySet<number> = new Set([2, 3]);

interface TcpMatcher {
  /** Canonical address text, or null for a wildcard listener. */
  address: string | null;
  port: number;
}

function tcpMatcher(socket: { host: string; port: number }): TcpMatcher {
  const bytes = parseIp(socket.host);
  if (bytes === undefined || !Number.isInteger(socket.port) || socket.port < 1 || socket.port > 65535) {
    throw new PodsockError(
      'PODSOCK_ERR_BAD_SOCKET',
      `Cannot count connections on ${q(`${socket.host}:${socket.port}`)}: expected an IP address and a port from 1 to 65535`,
      { details: { host: socket.host, port: socket.port } },
    );
  }
  const wildcard = bytes.every((b) => b === 0);
  return { address: wildcard ? null : formatIp(bytes), port: socket.port };
}

/** The path as /proc/net/unix prints it: abstract names (leading NUL) as `@name`, inner NULs as `@`. */
function unixPathKey(path: string): string {
  return path.startsWith('\0') ? path.replace(/\0/g, '@') : path;
}

/** True when `entry` is a live connection on one of the listeners. */
function tcpEntryMatches(entry: TcpEntry, matchers: readonly TcpMatcher[]): boolean {
  if (!ACTIVE_TCP_STATES.has(entry.state)) return false;
  return matchers.some((m) => m.port === entry.localPort && (m.address === null || m.address === entry.localAddress));
}

function unixEntryMatches(entry: UnixEntry, paths: ReadonlySet<string>): boolean {
  return (
    entry.path !== undefined &&
    paths.has(entry.path) &&
    (entry.flags & UNIX_FLAG_ACCEPTCON) === 0 &&
    CONNECTED_UNIX_TYPES.has(entry.type) &&
    ACTIVE_UNIX_STATES.has(entry.state)
  );
}

/**
 * Count the live connections on `sockets` in the given table texts: TCP rows in ESTABLISHED, SYN_RECV or
 * CLOSE_WAIT whose local port is a watched port and whose local address equals the watched address (any
 * address for a `0.0.0.0`/`::` listener), plus unix stream/seqpacket rows that carry a watched path and are
 * not the listener. Connections still in an accept queue are included (see the module comment). A row
 * that matches several watched sockets counts once. Pure; malformed table lines are skipped. Throws
 * PODSOCK_ERR_BAD_SOCKET when a watched TCP socket's host is not an IP literal or its port is out of range,
 * because counting nothing on it would make a busy service look idle.
 */
export function countConnections(sockets: readonly WatchedSocket[], tables: ProcNetTables): number {
  const matchers: TcpMatcher[] = [];
  const paths = new Set<string>();
  for (const socket of sockets) {
    if (socket.kind === 'tcp') matchers.push(tcpMatcher(socket));
    else paths.add(unixPathKey(socket.path));
  }
  let count = 0;
  if (matchers.length > 0) {
    // The kernel prints a local port as `:%04X ` after the address (net/ipv4/tcp_ipv4.c get_tcp4_sock()).
    const ports = [...new Set(matchers.map((m) => `:${m.port.toString(16).toUpperCase().padStart(4, '0')} `))];
    for (const entry of parseProcNetTcp(linesContaining(tables.tcp, ports), false)) if (tcpEntryMatches(entry, matchers)) count++;
    for (const entry of parseProcNetTcp(linesContaining(tables.tcp6, ports), true)) if (tcpEntryMatches(entry, matchers)) count++;
  }
  if (paths.size > 0) {
    for (const entry of parseProcNetUnix(linesContaining(tables.unix, [...paths]))) if (unixEntryMatches(entry, paths)) count++;
  }
  return count;
}

/**
 * The lines of `text` that contain one of `needles`, each once, in order. A row can only match a watched
 * socket if it contains its port (TCP) or path (unix), so parsing only these gives the same count; on a
 * host with thousands of sockets the rows podsock does not watch are never split out or parsed, which is
 * most of the garbage a sample made (and what grew V8's young generation in a long-running service).
 */
export function linesContaining(text: string, needles: readonly string[]): string {
  const starts = new Set<number>();
  for (const needle of needles) {
    if (needle === '') continue;
    for (let i = text.indexOf(needle); i !== -1; i = text.indexOf(needle, i + needle.length)) starts.add(text.lastIndexOf('\n', i) + 1);
  }
  const out: string[] = [];
  for (const start of [...starts].sort((a, b) => a - b)) {
    const end = text.indexOf('\n', start);
    out.push(text.slice(start, end === -1 ? text.length : end));
  }
  return out.join('\n');
}

/**
 * Read the tables `sockets` need from `<procRoot>/net/` and return {@link countConnections} of them.
 * A missing table (no IPv6 in the kernel: ENOENT) counts as empty. Any other read failure rejects with
 * PODSOCK_ERR_INTERNAL carrying the cause, since the caller cannot tell idle from unknown without it.
 *
 * With `countUnix`, the unix sockets that carry an fd are counted by it instead: /proc/net/unix prints
 * socket names raw, so any local user can bind a name holding a newline and a forged row that names a
 * watched path (kept only as the fallback where the kernel has no sock_diag). Its errors propagate.
 */
export async function readConnectionCount(sockets: readonly WatchedSocket[], procRoot = '/proc', countUnix?: UnixCounter): Promise<number> {
  let counted = 0;
  if (countUnix !== undefined) {
    const fds: number[] = [];
    for (const s of sockets) if (s.kind === 'unix' && s.fd !== undefined && !fds.includes(s.fd)) fds.push(s.fd);
    if (fds.length > 0) {
      counted = countUnix(fds);
      sockets = sockets.filter((s) => s.kind !== 'unix' || s.fd === undefined);
    }
  }
  const wantTcp = sockets.some((s) => s.kind === 'tcp');
  const wantUnix = sockets.some((s) => s.kind === 'unix');
  const [tcp, tcp6, unix] = await Promise.all([
    wantTcp ? readTable(procRoot, 'tcp') : '',
    wantTcp ? readTable(procRoot, 'tcp6') : '',
    wantUnix ? readTable(procRoot, 'unix') : '',
  ]);
  return counted + countConnections(sockets, { tcp, tcp6, unix });
}

async function readTable(procRoot: string, name: string): Promise<string> {
  const file = join(procRoot, 'net', name);
  try {
    // fs.readFile, not fs/promises: that module is not worth its load time on podsock's start path.
    return await new Promise<string>((res, rej) => readFile(file, 'utf8', (err, text) => (err === null ? res(text) : rej(err))));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new PodsockError('PODSOCK_ERR_INTERNAL', `Cannot read ${q(file)} to count connections`, {
      cause: err,
      details: { file },
    });
  }
}
