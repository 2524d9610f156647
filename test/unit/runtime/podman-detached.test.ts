/**
 * `podman run -d` as podsock watches it (runtime/podman.ts startRun with a detached watch), against a
 * shell script standing in for podman that does what podman does: it double-forks a long-lived
 * "conmon", which writes its own pid to the --conmon-pidfile, and exits once that one runs. The real
 * podman cannot be made to lose its conmon pidfile or fail on demand; the e2e tests run the real one.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { childPids, startRun, type Podman } from '../../../src/runtime/podman.js';
import { nativeSpawnAvailable } from '../../../src/native/spawn.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

const dir = tmpDir(t, 'podsock-detached-test-');

/**
 * A fake `podman run -d`: a "conmon" started through an intermediate shell that exits at once (so it
 * is orphaned, like conmon), writing its pid to $CONMON_PIDFILE, running `sleep $CONMON_SLEEP`, then
 * exiting $CONMON_EXIT; and a "helper" orphan (like slirp4netns) that ends a little after. podman
 * itself exits $PODMAN_EXIT once conmon's pid is written.
 */
const script = join(dir, 'podman');
writeFileSync(
  script,
  `#!/bin/sh
if [ "\${PODMAN_EXIT:-0}" != 0 ]; then echo "podman: failing" >&2; exit "$PODMAN_EXIT"; fi
sh -c 'sh -c "echo \\$\\$ > \\"$CONMON_PIDFILE\\".tmp; [ -n \\"$NO_PIDFILE\\" ] || mv \\"$CONMON_PIDFILE\\".tmp \\"$CONMON_PIDFILE\\"; sleep $CONMON_SLEEP; exit $CONMON_EXIT" &' &
sh -c 'sh -c "sleep 0.3" &' &
wait
while [ -z "$NO_PIDFILE" ] && [ ! -s "$CONMON_PIDFILE" ]; do sleep 0.01; done
exit 0
`,
);
chmodSync(script, 0o755);

function podman(env: Record<string, string>): Podman {
  return { binary: script, env: { PATH: '/usr/bin:/bin', ...env } };
}

const skip = nativeSpawnAvailable() ? false : 'no pidfd_open here: podman stays attached';

let n = 0;
function pidfile(): string {
  return join(dir, `conmon-${++n}.pid`);
}

/** This process's children that are zombies (exited, not reaped). */
function zombies(): number[] {
  return childPids().filter((pid) => {
    try {
      return / Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\)/, ''));
    } catch {
      return false;
    }
  });
}

void t.test('the container exit status is conmon\'s, read as its reaper; podman is gone meanwhile', { skip }, async (t) => {
  const file = pidfile();
  const run = startRun(podman({ CONMON_PIDFILE: file, CONMON_SLEEP: '0.5', CONMON_EXIT: '3' }), { args: ['run', '-d'], env: {} }, [], { detached: true, conmonPidfile: file });
  t.type(run.pid, 'number');
  // Once podman has exited, the conmon stand-in is a child of this process.
  const conmon = await new Promise<number>((resolve) => {
    const poll = setInterval(() => {
      const text = (() => {
        try {
          return readFileSync(file, 'utf8').trim();
        } catch {
          return '';
        }
      })();
      if (text !== '' && childPids().includes(Number(text)) && !childPids().includes(run.pid as number)) {
        clearInterval(poll);
        resolve(Number(text));
      }
    }, 10);
  });
  t.ok(conmon > 0, 'conmon was reparented to this process (subreaper)');
  const info = await run.exited;
  t.same({ code: info.code, signal: info.signal }, { code: 3, signal: null }, 'the exit code is conmon\'s');
  await new Promise((r) => setTimeout(r, 600));
  t.same(zombies(), [], 'the other orphan was reaped too');
});

void t.test('a signal to the running container goes to conmon', { skip }, async (t) => {
  const file = pidfile();
  const run = startRun(podman({ CONMON_PIDFILE: file, CONMON_SLEEP: '30', CONMON_EXIT: '0' }), { args: ['run', '-d'], env: {} }, [], { detached: true, conmonPidfile: file });
  while (!childPids().includes(Number(readFileSafe(file)))) await new Promise((r) => setTimeout(r, 10));
  while (childPids().includes(run.pid as number)) await new Promise((r) => setTimeout(r, 10));
  t.ok(run.kill('SIGKILL'));
  const info = await run.exited;
  t.same({ code: info.code, signal: info.signal }, { code: null, signal: 'SIGKILL' });
});

void t.test('podman failing is reported with its own status', { skip }, async (t) => {
  const file = pidfile();
  const run = startRun(podman({ PODMAN_EXIT: '125', CONMON_PIDFILE: file, CONMON_SLEEP: '0', CONMON_EXIT: '0' }), { args: ['run', '-d'], env: {} }, [], { detached: true, conmonPidfile: file });
  const info = await run.exited;
  t.same({ code: info.code, signal: info.signal }, { code: 125, signal: null });
});

void t.test('no conmon pidfile: the status is lost, and said so', { skip }, async (t) => {
  const file = pidfile();
  const run = startRun(podman({ NO_PIDFILE: '1', CONMON_PIDFILE: file, CONMON_SLEEP: '0.2', CONMON_EXIT: '0' }), { args: ['run', '-d'], env: {} }, [], { detached: true, conmonPidfile: file });
  const info = await run.exited;
  t.same({ code: info.code, signal: info.signal }, { code: null, signal: null });
  t.match(info.lost, /podman did not write conmon's pid/);
  await new Promise((r) => setTimeout(r, 600));
  t.same(zombies(), [], 'the unwatched conmon was reaped as a stray');
});

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}
