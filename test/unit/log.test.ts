import { spawnSync } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ATTACH_AFTER_MS, createLogger, EARLY_RECORDS_MAX, formatLine, stderrIsJournal } from '../../src/log.js';
import { closeFd, listenSocket } from '../../src/native/fds.js';
import { tmpDir } from '../helpers/tmp-dir.js';

/** An empty log file in a private directory, open for writing; both go when the test ends. */
function logFile(t: Test, prefix: string): { file: string; fd: number } {
  const dir = tmpDir(t, prefix);
  const file = join(dir, 'log.json');
  const fd = openSync(file, 'w');
  t.teardown(() => closeSync(fd));
  return { file, fd };
}


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
  const dir = tmpDir(t, 'podsock-log-');
  const bin = join(import.meta.dirname, '..', '..', 'dist', 'bin', 'podsock.cjs');
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

void t.test('records logged before attach() are kept with their own times and written in order on attach', async (t) => {
  const { file, fd } = logFile(t, 'podsock-log-early-');
  const root = createLogger('debug', {}, { fd });
  const log = root.child({ service: 'web' });
  const before = Date.now();
  log.info({ mode: 'proxy' }, 'first');
  log.trace('below the level: never written');
  await new Promise((r) => setTimeout(r, 60));
  log.child({ conn: 7 }).info('second');
  t.equal(readFileSync(file, 'utf8'), '', 'nothing is written before attach');
  await root.attach();
  await root.attach();
  log.error('third');
  const recs = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.same(
    recs.map((r) => [r.level, r.msg, r.service, r.mode, r.conn]),
    [
      [30, 'first', 'web', 'proxy', undefined],
      [30, 'second', 'web', undefined, 7],
      [50, 'third', 'web', undefined, undefined],
    ],
  );
  const [t1, t2] = recs.map((r) => r.time as number);
  t.ok(t1 !== undefined && t1 >= before && t1 < before + 50, `the first record keeps the time it was logged (${t1} vs ${before})`);
  t.ok(t2 !== undefined && t1 !== undefined && t2 - t1 >= 50, 'the second keeps its later time');
});

void t.test('the early buffer is bounded: the oldest records go and a warning counts them', async (t) => {
  const { file, fd } = logFile(t, 'podsock-log-bound-');
  const root = createLogger('info', {}, { fd });
  for (let i = 0; i < EARLY_RECORDS_MAX + 5; i++) root.info(`r${i}`);
  await root.attach();
  const msgs = readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg);
  t.equal(msgs.length, EARLY_RECORDS_MAX + 1);
  t.equal(msgs[0], 'Dropped 5 log records written before the logger was ready');
  t.equal(msgs[1], 'r5');
  t.equal(msgs.at(-1), `r${EARLY_RECORDS_MAX + 4}`);
});

void t.test('the logger attaches by itself after ATTACH_AFTER_MS', async (t) => {
  const { file, fd } = logFile(t, 'podsock-log-timer-');
  const root = createLogger('info', {}, { fd });
  root.info('waiting');
  const deadline = Date.now() + 20_000;
  while (readFileSync(file, 'utf8') === '' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.match(readFileSync(file, 'utf8'), /"msg":"waiting"/);
  t.ok(ATTACH_AFTER_MS <= 1000, 'a short delay');
});

void t.test('a warning or an error writes everything at once, synchronously (it may precede an exit)', async (t) => {
  const { file, fd } = logFile(t, 'podsock-log-warn-');
  const root = createLogger('info', {}, { fd });
  root.info('kept');
  t.equal(readFileSync(file, 'utf8'), '');
  root.warn({ reason: 'SIGTERM' }, 'Second stop request');
  const msgs = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { msg: string; level: number });
  t.same(msgs.map((m) => [m.level, m.msg]), [[30, 'kept'], [40, 'Second stop request']], 'written before warn() returned');
});
