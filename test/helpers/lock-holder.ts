// Another process holding a lock file (src/lock-file.ts): a real child process running the same
// module, for tests of what a second process sees.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

const LOCK_MODULE = fileURLToPath(new URL('../../src/lock-file.ts', import.meta.url));

export interface LockHolder {
  child: ChildProcess;
  /** What the child's tryLockFile answered: 'locked', or 'refused PID'. */
  answer: string;
  /** Tell the child to release its lock; resolves once it did. */
  release(): Promise<void>;
  /** Send `signal` to the child; resolves once it has exited. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

/** A child process that tries to lock `path` and, when it got it, holds it until told or killed (killed at the end of `t`). */
export async function lockHolder(t: Test, path: string): Promise<LockHolder> {
  const code = `
    import { tryLockFile } from ${JSON.stringify(LOCK_MODULE)};
    import { createInterface } from 'node:readline';
    const r = tryLockFile(process.argv[1]);
    console.log(r.lock === null ? 'refused ' + r.pid : 'locked');
    createInterface({ input: process.stdin }).on('line', () => { r.lock?.release(); console.log('released'); });
  `;
  // Only the TypeScript loader of this test process, so the child can import src/*.ts.
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const child = spawn(process.execPath, [...loader, '--input-type=module', '-e', code, path], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => void child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const l = await lines.next();
    if (l.done === true) throw new Error(`the lock holder of '${path}' ended without answering`);
    return l.value as string;
  };
  const answer = await next();
  return {
    child,
    answer,
    async release() {
      child.stdin!.write('release\n');
      const said = await next();
      if (said !== 'released') throw new Error(`the lock holder said '${said}', expected 'released'`);
    },
    async kill(signal) {
      const exit = once(child, 'exit');
      child.kill(signal);
      await exit;
    },
  };
}
