// A separate node process for tests that check a piece of code leaves no socket or timer behind:
// such a process exits by itself only when nothing keeps its event loop alive.
import { spawn } from 'node:child_process';
import type { Test } from 'tap';

/**
 * Runs `body` (an ES module's text; top-level await allowed) in a new node with this process's
 * arguments, so it can import src/*.ts, and waits for the process to end. After `body`, a 5 s
 * watchdog that does not hold the loop prints `left` and process.getActiveResourcesInfo() and exits
 * with 3: a leaked handle shows as that line and that status. Killed at teardown. Resolves with
 * what the process printed on stdout and its exit status.
 */
export async function runUntilItExits(t: Test, body: string): Promise<{ out: string; exitCode: number | null }> {
  const code = `${body}
    setTimeout(() => { console.log('left', JSON.stringify(process.getActiveResourcesInfo())); process.exit(3); }, 5000).unref();
  `;
  const child = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { out, exitCode };
}
