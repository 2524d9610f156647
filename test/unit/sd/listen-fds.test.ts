import t from 'tap';
import {
  parseListenEnv,
  listenFdsWithNames,
  scrubbedEnv,
  describeFd,
  type FdInfo,
} from '../../../src/sd/listen-fds.js';

const PID = 4242;

void t.test('no LISTEN_PID means no fds', async (t) => {
  const r = parseListenEnv({ LISTEN_FDS: '2' }, PID);
  t.same(r.fds, []);
  t.match(r.reason, /LISTEN_PID is not set/);
});

void t.test('LISTEN_PID of another process means no fds (sd_listen_fds: is this for us?)', async (t) => {
  const r = parseListenEnv({ LISTEN_PID: '1', LISTEN_FDS: '1' }, PID);
  t.same(r.fds, []);
  t.match(r.reason, /names another process/);
});

void t.test('malformed LISTEN_PID is an error naming the value', async (t) => {
  for (const bad of ['abc', '', '-1', '0', '+5', ' 42', '42 ', '4.2', '99999999999']) {
    t.throws(
      () => parseListenEnv({ LISTEN_PID: bad, LISTEN_FDS: '1' }, PID),
      { name: 'PodsockError', code: 'PODSOCK_ERR_LISTEN_ENV', message: `Invalid LISTEN_PID='${bad}': expected a process id (a positive integer)` },
      `LISTEN_PID=${JSON.stringify(bad)}`,
    );
  }
});

void t.test('LISTEN_FDS unset means none; malformed is an error', async (t) => {
  t.same(parseListenEnv({ LISTEN_PID: String(PID) }, PID).fds, []);
  t.throws(() => parseListenEnv({ LISTEN_PID: String(PID), LISTEN_FDS: '1048577' }, PID), {
    code: 'PODSOCK_ERR_LISTEN_ENV',
    message: "Invalid LISTEN_FDS='1048577': expected at most 1048576 fds (the kernel's fs.nr_open default)",
  });
  for (const bad of ['0', '-2', 'x', '', '1x', '2147483647']) {
    t.throws(
      () => parseListenEnv({ LISTEN_PID: String(PID), LISTEN_FDS: bad }, PID),
      { name: 'PodsockError', code: 'PODSOCK_ERR_LISTEN_ENV', message: `Invalid LISTEN_FDS='${bad}': expected the number of passed fds (a positive integer)` },
      `LISTEN_FDS=${JSON.stringify(bad)}`,
    );
  }
});

void t.test('fds start at 3, names default to unknown', async (t) => {
  const r = parseListenEnv({ LISTEN_PID: String(PID), LISTEN_FDS: '3' }, PID);
  t.same(r.fds, [
    { fd: 3, name: 'unknown' },
    { fd: 4, name: 'unknown' },
    { fd: 5, name: 'unknown' },
  ]);
  t.equal(r.reason, null);
});

void t.test('LISTEN_FDNAMES keeps empty names and must match the count', async (t) => {
  const env = { LISTEN_PID: String(PID), LISTEN_FDS: '3', LISTEN_FDNAMES: 'http::https' };
  t.same(
    parseListenEnv(env, PID).fds.map((f) => f.name),
    ['http', '', 'https'],
  );
  t.throws(
    () => parseListenEnv({ ...env, LISTEN_FDNAMES: 'http:https' }, PID),
    /has 2 name\(s\) but LISTEN_FDS=3/,
  );
  t.throws(() => parseListenEnv({ ...env, LISTEN_FDNAMES: '' }, PID), /has 1 name\(s\) but LISTEN_FDS=3/);
});

void t.test('LISTEN_PIDFDID is checked when the caller knows its pidfd id', async (t) => {
  const env = { LISTEN_PID: String(PID), LISTEN_FDS: '1', LISTEN_PIDFDID: '77' };
  t.equal(parseListenEnv(env, PID, 77n).fds.length, 1);
  t.same(parseListenEnv(env, PID, 78n).fds, []);
  t.equal(parseListenEnv(env, PID, null).fds.length, 1, 'unknown own id: not checked, like libsystemd on old kernels');
  t.throws(() => parseListenEnv({ ...env, LISTEN_PIDFDID: 'x' }, PID, 77n), /Invalid LISTEN_PIDFDID='x'/);
});

void t.test('listenFdsWithNames describes each fd and names an unusable one', async (t) => {
  const table: Record<number, FdInfo> = {
    3: { fd: 3, family: 'inet', type: 'stream', listening: true, host: '127.0.0.1', port: 8080 },
    4: { fd: 4, family: 'unix', type: 'stream', listening: true, path: '/run/x.sock' },
  };
  const inspect = (fd: number): FdInfo => {
    const info = table[fd];
    if (!info) throw new Error(`fd ${fd}: EBADF`);
    return info;
  };
  const env = { LISTEN_PID: String(PID), LISTEN_FDS: '2', LISTEN_FDNAMES: 'web:sock' };
  const r = listenFdsWithNames(env, PID, inspect);
  t.equal(r.fds.length, 2);
  t.equal(r.fds[0]?.name, 'web');
  t.equal(r.fds[0]?.port, 8080);
  t.equal(describeFd(r.fds[0]!), 'web: TCP 127.0.0.1:8080 (listening)');
  t.equal(describeFd(r.fds[1]!), 'sock: unix stream /run/x.sock (listening)');
  t.throws(
    () => listenFdsWithNames({ ...env, LISTEN_FDS: '3', LISTEN_FDNAMES: 'a:b:c' }, PID, inspect),
    { code: 'PODSOCK_ERR_LISTEN_ENV', message: /fd 5 \('c'\) but it cannot be used: fd 5: EBADF/ },
  );
});

void t.test('scrubbedEnv removes LISTEN_*, NOTIFY_SOCKET and WATCHDOG_*', async (t) => {
  const env = {
    PATH: '/bin',
    LISTEN_PID: '1',
    LISTEN_PIDFDID: '2',
    LISTEN_FDS: '1',
    LISTEN_FDNAMES: 'x',
    NOTIFY_SOCKET: '/run/n',
    WATCHDOG_USEC: '1',
    WATCHDOG_PID: '1',
    HOME: '/root',
    EMPTY: undefined,
  };
  t.same(scrubbedEnv(env), { PATH: '/bin', HOME: '/root' });
});
