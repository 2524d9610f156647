// A socket name that forges a /proc/net/unix row. /proc/net/unix prints a socket's name raw
// (net/unix/af_unix.c unix_seq_show()), so a name holding a newline ends its row and starts another;
// any local user can bind such an abstract name.
import { spawn } from 'node:child_process';
import type { Test } from 'tap';
import { PYTHON } from './python.js';

// The abstract name's second line is a connected stream row carrying the watched path (argv[1]).
const FORGER = [
  'import socket,sys',
  's=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM)',
  's.bind(b"\\0f\\n0000000000000000: 00000002 00000000 00000000 0001 03 4242 " + sys.argv[1].encode())',
  'print("bound",flush=True)',
  'sys.stdin.read()',
].join('\n');

/**
 * Binds, in a python3 child, an abstract unix socket whose name shows in /proc/net/unix as one more
 * connected stream row on `path`; resolves once it is bound. It stays bound until `t` ends.
 */
export async function bindForgedUnixRow(t: Test, path: string): Promise<void> {
  const forger = spawn(PYTHON, ['-c', FORGER, path], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => forger.kill());
  await new Promise<void>((resolve, reject) => {
    forger.stdout.once('data', () => resolve());
    forger.once('exit', (code) => reject(new Error(`the forger exited (${code})`)));
  });
}
