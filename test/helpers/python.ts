// python3 as the other end of a socket in unit tests: it can send what Node cannot (SCM_RIGHTS,
// hostile datagrams).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Test } from 'tap';

// The system interpreter starts in ~0.1 s; a version-manager shim on PATH can take seconds.
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/**
 * Runs a python3 snippet with the socket path as argv[1] (killed when `t` ends); resolves with its
 * stdout once it exited 0 and its output is read and its pipes closed, rejects with its stderr otherwise.
 */
export function python(t: Test, code: string, socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', code, socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.teardown(() => child.kill('SIGKILL'));
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    // 'close', not 'exit': all output is read and the stdio pipes are closed (a test counting fds needs that).
    child.once('close', (status) => (status === 0 ? resolve(out.trim()) : reject(new Error(`python3 exit ${status}: ${err}`))));
  });
}
