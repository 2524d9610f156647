/** Another process's network namespace (native/netns.c): open it, and create a TCP socket inside it. */
import { call, checkFd, invalid } from './addon.js';

interface NetnsBinding {
  netnsOpen(pid: number): { fd: number; ppid: number };
  netnsSocket(nsfd: number, family: 4 | 6): number;
}

/**
 * Open the network namespace of process `pid` (/proc/PID/ns/net) and read its parent pid, both through
 * one /proc/PID directory fd, so that both describe the same process even if `pid` is reused meanwhile.
 * The caller owns `fd` (closeFd). Throws PODSOCK_ERR_NATIVE (ENOENT/ESRCH: gone).
 */
export function netnsOpen(pid: number): { fd: number; ppid: number } {
  if (!Number.isInteger(pid) || pid < 1 || pid > 0x7fffffff) throw invalid('open the network namespace of pid', String(pid), 'expected a positive integer pid');
  return call('open the network namespace of pid', String(pid), (b: NetnsBinding) => b.netnsOpen(pid));
}

/**
 * A non-blocking TCP socket (IPv4 or IPv6), not yet connected, created inside the network namespace
 * `nsfd` (from netnsOpen). The caller owns the fd. Needs CAP_SYS_ADMIN (setns(2)); throws
 * PODSOCK_ERR_NATIVE (syscall 'setns' or 'socket').
 */
export function netnsSocket(nsfd: number, family: 4 | 6): number {
  checkFd('create a socket in network namespace fd', nsfd);
  return call('create a socket in network namespace fd', String(nsfd), (b: NetnsBinding) => b.netnsSocket(nsfd, family));
}
