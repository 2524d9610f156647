// Which relay engine the addon should pick on this machine: io_uring on Linux 6.1+ unless
// kernel.io_uring_disabled says otherwise (1: only for a group, 2: for nobody) or a seccomp filter
// forbids it. A test that expects io_uring here fails when the addon falls back without cause.
import { readFileSync } from 'node:fs';
import { release } from 'node:os';

export function expectedRelayEngine(): 'io_uring' | 'poll' {
  const [major = 0, minor = 0] = release().split(/[.-]/).map(Number);
  if (major < 6 || (major === 6 && minor < 1)) return 'poll';
  let disabled = '0';
  try {
    disabled = readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim();
  } catch {
    // No such sysctl before Linux 6.6: io_uring is allowed.
  }
  if (disabled === '2' || (disabled === '1' && process.getuid?.() !== 0)) return 'poll';
  const seccomp = /^Seccomp:\s*(\d)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return seccomp === '2' ? 'poll' : 'io_uring';
}
