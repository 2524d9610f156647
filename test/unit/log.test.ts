import { spawnSync } from 'node:child_process';
import { fstatSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { formatLine, stderrIsJournal } from '../../src/log.js';
import { closeFd, listenSocket } from '../../src/sd/native.js';

void t.test('journal lines carry the syslog priority prefix', async (t) => {
  const rec = (level: number, extra: Record<string, unknown> = {}): string => JSON.stringify({ level, time: 0, msg: 'm', ...extra });
  t.equal(formatLine(rec(50), 'journal'), '<3>m\n', 'error → 3');
  t.equal(formatLine(rec(40), 'journal'), '<4>m\n', 'warn → 4');
  t.equal(formatLine(rec(30), 'journal'), '<6>m\n', 'info → 6');
  t.equal(formatLine(rec(20), 'journal'), '<7>m\n', 'debug → 7');
  t.equal(formatLine(rec(60), 'journal'), '<2>m\n', 'fatal → 2');
  t.equal(formatLine(rec(30, { service: 'web', ms: 12 }), 'journal'), '<6>m service=web ms=12\n');
  t.equal(
    formatLine(rec(50, { err: { message: 'boom', code: 'PODSOCK_ERR_X' } }), 'journal'),
    '<3>m err="boom" code=PODSOCK_ERR_X\n',
  );
  t.equal(formatLine(JSON.stringify({ level: 30, msg: 'two\nlines' }), 'journal'), '<6>two lines\n', 'one record, one line');
});

void t.test('terminal lines are readable', async (t) => {
  const line = formatLine(JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 1, 12, 0, 0), msg: 'hello', a: 'b c' }), 'pretty');
  t.match(line, /^\d\d:\d\d:\d\d warn {2}hello a="b c"\n$/);
});

void t.test('JOURNAL_STREAM is honoured only when it names fd 2', async (t) => {
  const st = fstatSync(2, { bigint: true });
  t.equal(stderrIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }), true);
  t.equal(stderrIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` }), false);
  t.equal(stderrIsJournal({ JOURNAL_STREAM: 'garbage' }), false);
  t.equal(stderrIsJournal({}), false);
});

void t.test('podsock logs JSON when stderr is neither journal nor terminal, with priority prefixes for the journal', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podsock-log-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');
  // Socket-activated like under systemd (a listening fd at 3, LISTEN_PID = podsock's pid via a shell
  // that execs), with a podman that does not exist: one logged start, then one logged failure.
  const listenFd = listenSocket({ kind: 'unix', path: join(dir, 's.sock'), backlog: 8 });
  t.teardown(() => closeFd(listenFd));
  const run = (name: string, stderr: number | 'pipe', extra: Record<string, string>) =>
    spawnSync('/bin/sh', ['-c', 'export LISTEN_PID=$$; exec "$0" "$@"', process.execPath, bin, 'run', name, '--', 'localhost/none'], {
      stdio: ['ignore', 'ignore', stderr, listenFd],
      encoding: 'utf8',
      timeout: 60_000,
      env: {
        PATH: process.env.PATH ?? '',
        PODSOCK_CONFIG_DIR: dir,
        PODSOCK_PODMAN: join(dir, 'no-podman'),
        XDG_RUNTIME_DIR: dir,
        RUNTIME_DIRECTORY: join(dir, 'rt'),
        LISTEN_FDS: '1',
        ...extra,
      },
    });
  const file = join(dir, 'err.log');
  const fd = openSync(file, 'w');
  const st = fstatSync(fd, { bigint: true });
  const r = run(`x${process.pid}`, fd, { JOURNAL_STREAM: `${st.dev}:${st.ino}` });
  t.equal(r.status, 69, 'podman missing: exit 69');
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  t.match(lines[0], /^<6>Starting 'x\d+' \(socket-activated\) service=x\d+ mode=handover/, 'info line with priority 6');
  t.ok(
    lines.some((l) => /^<3>podman not found: PODSOCK_PODMAN='.*no-podman' is not an executable file/.test(l)),
    `error with priority 3: ${lines.join(' | ')}`,
  );

  const json = run(`y${process.pid}`, 'pipe', {});
  const first = JSON.parse(String(json.stderr).split('\n')[0] ?? '') as { level: number; msg: string; service: string };
  t.equal(first.level, 30);
  t.equal(first.service, `y${process.pid}`);
  t.match(first.msg, /Starting 'y\d+'/, 'JSON when stderr is a pipe');
});
