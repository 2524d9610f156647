/**
 * `podsock run` as a user without XDG_RUNTIME_DIR (a system unit with User=, `sudo -u`, cron), through
 * the built bin: its runtime directory is /tmp/podsock-UID, a name any local user can take first.
 * A directory another user made there is refused with a clear error (exit 73), and nothing is written
 * in it; without one, podsock makes it private itself. The socket-activated start is set up as systemd
 * would (a listening socket at fd 3, LISTEN_FDS, LISTEN_PID) by a few lines of Python that then drop to
 * an unused uid; podman is the fake one failing at once, so no container runs.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = join(root, 'dist', 'bin', 'podsock.cjs');
const fakePodman = join(root, 'test', 'fixtures', 'fake-podman.sh');

// Binds fd 3 as systemd's socket unit would, becomes UID, and execs the rest with LISTEN_PID its own pid.
const ACTIVATE = `
import os, socket, sys
uid = int(sys.argv[1])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind('\\0podsock-private-dir-%d' % os.getpid())
s.listen(8)
if s.fileno() != 3: os.dup2(s.fileno(), 3)
else: os.set_inheritable(3, True)
os.setgroups([]); os.setgid(uid); os.setuid(uid)
env = {'PATH': '/usr/bin:/bin', 'HOME': '/nonexistent', 'LISTEN_FDS': '1', 'LISTEN_PID': str(os.getpid())}
env.update(kv.split('=', 1) for kv in sys.argv[2].split('\\n') if kv)
os.execve(sys.argv[3], sys.argv[3:], env)
`;

// An unused uid for each run, so that parallel runs and other tests never share /tmp/podsock-UID.
const uid = 50000 + (process.pid % 10000);
const runtimeDir = `/tmp/podsock-${uid}`;

function runAs(config: string): { status: number | null; stderr: string } {
  const env = ['PODSOCK_PODMAN=' + fakePodman, 'FAKE_PODMAN=exit:125'].join('\n');
  const r = spawnSync('/usr/bin/python3', ['-c', ACTIVATE, String(uid), env, process.execPath, bin, 'run', 'svc', '--config', config], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stderr: r.stderr };
}

void t.test('a /tmp/podsock-UID another user made is refused, clearly; one of our own is made private', { skip: process.geteuid?.() !== 0 && 'needs root to change uid' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podsock-rpd-'));
  chmodSync(dir, 0o755);
  const config = join(dir, 'svc.container');
  writeFileSync(config, '[Container]\nImage=localhost/podsock-no-such-image:0\n[Podsock]\nMode=handover\nReady=started\n');
  chmodSync(config, 0o644);
  const cleanUp = (): void => rmSync(runtimeDir, { recursive: true, force: true });
  cleanUp();
  t.teardown(() => {
    cleanUp();
    rmSync(dir, { recursive: true, force: true });
  });

  // Another user got there first, with a directory anyone may write to.
  mkdirSync(runtimeDir);
  chmodSync(runtimeDir, 0o777);
  chownSync(runtimeDir, uid + 1, uid + 1);
  const refused = runAs(config);
  t.equal(refused.status, 73, `exit 73 (stderr: ${refused.stderr})`);
  t.match(
    refused.stderr,
    `Refusing to use directory '${runtimeDir}': found a directory owned by uid ${uid + 1} with mode 0777; expected a directory owned by uid ${uid} (this user) that no other user can write to.`,
  );
  t.notMatch(refused.stderr, 'Internal error', 'not an internal error');
  t.same(readdirSync(runtimeDir), [], 'nothing was created in it');

  // Without it, the same start makes the directories itself, private (and fails later, at podman).
  cleanUp();
  const own = runAs(config);
  t.not(own.status, 73, `past the directories (stderr: ${own.stderr})`);
  t.match(own.stderr, 'fake podman', 'as far as podman');
  for (const d of [runtimeDir, join(runtimeDir, 'state')]) {
    const st = lstatSync(d);
    t.ok(st.isDirectory() && st.uid === uid && (st.mode & 0o7777) === 0o700, `${d} is a 0700 directory of uid ${uid}`);
  }
  t.ok(existsSync(join(runtimeDir, 'state', 'svc.failures')), 'the failure is recorded there');
});
