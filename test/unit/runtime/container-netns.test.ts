// Reaching an app inside another network namespace (runtime/container-netns.ts, native/netns.c): which
// process's namespace is accepted, and every connect path (the native relay, the JS connect of the
// JS pipe, the TCP and HTTP readiness probes) reaching a server that listens only on the loopback of a
// namespace of its own, made with unshare(1). The namespace tests need root (setns(2), unshare -n).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { netnsBackendPossible, notTheContainer, openContainerNetns, readPidfile } from '../../../src/runtime/container-netns.js';
import { connectTcp } from '../../../src/proxy/netns-connect.js';
import { connectUpstream } from '../../../src/proxy/upstream.js';
import { probeTcpOnce } from '../../../src/readiness/tcp.js';
import { requestStatus } from '../../../src/readiness/http.js';
import { acceptConnections } from '../../../src/native/acceptor.js';
import { closeFd, inspectFd, listenSocket } from '../../../src/native/fds.js';
import { netnsOpen, netnsSocket } from '../../../src/native/netns.js';
import { RELAY_CONNECTED, RELAY_DONE, relayConnect, type RelayEvent } from '../../../src/native/relay.js';
import { tmpDir } from '../../helpers/tmp-dir.js';

const PORT = 18080;
const MARK = 'hello from the other namespace';

void t.test('netns backends: rootful, with conmon watched and the addon able to', async (t) => {
  t.equal(netnsBackendPossible({ rootless: false, detached: true, netns: true }), true);
  t.equal(netnsBackendPossible({ rootless: true, detached: true, netns: true }), false, 'rootless: setns needs CAP_SYS_ADMIN in podman\'s user namespace');
  t.equal(netnsBackendPossible({ rootless: false, detached: false, netns: true }), false, 'no conmon pid to check the container pid against');
  t.equal(netnsBackendPossible({ rootless: false, detached: true, netns: false }), false);
});

void t.test('the container is a child of its conmon, and nothing else', async (t) => {
  t.equal(notTheContainer(200, 100, 100), null);
  t.match(notTheContainer(200, 1, 100), /process 200 is not a child of the container's conmon \(its parent is 1, conmon is 100\)/);
  t.match(notTheContainer(100, 50, 100), /pid 100 is conmon itself/);
});

void t.test('readPidfile takes a positive decimal pid or nothing', async (t) => {
  const dir = tmpDir(t, 'podsock-pid-');
  const f = join(dir, 'p');
  t.equal(readPidfile(f), null, 'missing');
  for (const bad of ['', 'garbage\n', '0\n', '-3\n', '12345678901\n', '1 2\n']) {
    writeFileSync(f, bad);
    t.equal(readPidfile(f), null, JSON.stringify(bad));
  }
  writeFileSync(f, '4242\n');
  t.equal(readPidfile(f), 4242);
});

const isRoot = process.getuid?.() === 0;

/** A node server on 127.0.0.1:PORT in a new network namespace; the child's pid is the server's (unshare and sh exec). */
async function serverInOwnNetns(t: Test): Promise<ChildProcess> {
  const script = `require('node:http').createServer((q, s) => s.end(${JSON.stringify(MARK)})).listen(${PORT}, '127.0.0.1', () => console.log('up'))`;
  const child = spawn('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec "$0" -e "$1"`, process.execPath, script], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  await once(child.stdout as NodeJS.ReadableStream, 'data');
  return child;
}

void t.test('in a namespace of its own', { skip: isRoot ? false : 'needs root (unshare -n, setns)' }, async (t) => {
  const server = await serverInOwnNetns(t);
  const pid = server.pid as number;
  const dir = tmpDir(t, 'podsock-netns-');
  const pidfile = join(dir, 'ctr.pid');
  const conmonPidfile = join(dir, 'conmon.pid');

  await t.test('openContainerNetns: the pid file must name a child of the conmon pid file', async (t) => {
    t.throws(() => openContainerNetns(pidfile, conmonPidfile, 'podsock-web'), { code: 'PODSOCK_ERR_PODMAN', message: /Cannot reach container 'podsock-web': podman wrote no container pid to/ });
    writeFileSync(pidfile, `${pid}\n`);
    t.throws(() => openContainerNetns(pidfile, conmonPidfile, 'podsock-web'), { message: /podman wrote no conmon pid to/ });
    writeFileSync(conmonPidfile, '1\n');
    t.throws(() => openContainerNetns(pidfile, conmonPidfile, 'podsock-web'), {
      code: 'PODSOCK_ERR_PODMAN',
      message: new RegExp(`process ${pid} is not a child of the container's conmon \\(its parent is ${process.pid}, conmon is 1\\); refusing`),
    });
    writeFileSync(conmonPidfile, `${process.pid}\n`);
    const fd = openContainerNetns(pidfile, conmonPidfile, 'podsock-web');
    t.ok(fd >= 0);
    closeFd(fd);
    writeFileSync(pidfile, '999999999\n');
    t.throws(() => openContainerNetns(pidfile, conmonPidfile, 'podsock-web'), { message: /cannot open its network namespace \(pid 999999999\).*ENOENT/ });
  });

  await t.test('without CAP_SYS_ADMIN the start fails once, saying what is missing', async (t) => {
    writeFileSync(pidfile, `${pid}\n`);
    writeFileSync(conmonPidfile, `${process.pid}\n`);
    const script = join(dir, 'open.mts');
    writeFileSync(script, [
      `import { openContainerNetns } from ${JSON.stringify(new URL('../../../src/runtime/container-netns.js', import.meta.url).pathname)};`,
      'try { openContainerNetns(process.argv[2], process.argv[3], "podsock-web"); console.log("opened"); } catch (err) { console.log(err.code, err.message); }',
    ].join('\n'));
    const child = spawn('setpriv', ['--bounding-set=-sys_admin', '--inh-caps=-sys_admin', process.execPath, '--import=@tapjs/typescript/import', script, pidfile, conmonPidfile], {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: new URL('../../..', import.meta.url).pathname,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TS_NODE_TRANSPILE_ONLY: '1' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await once(child, 'close');
    t.match(out, /^PODSOCK_ERR_PODMAN Cannot reach container 'podsock-web': cannot create a socket in its network namespace: .*setns: EPERM .*needs CAP_SYS_ADMIN/);
  });

  const ns = netnsOpen(pid);
  t.teardown(() => closeFd(ns.fd));
  t.equal(ns.ppid, process.pid, 'the parent read through the same /proc/PID fd');

  await t.test('the JS connect reaches the loopback of that namespace, not this one', async (t) => {
    const s = connectTcp({ host: '127.0.0.1', port: PORT, netns: ns.fd });
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('connect', () => s.write('GET / HTTP/1.0\r\n\r\n'));
    await once(s, 'close');
    t.match(Buffer.concat(chunks).toString(), MARK);
    const here = connect({ host: '127.0.0.1', port: PORT });
    const err = await new Promise<Error | null>((resolve) => {
      here.on('error', resolve);
      here.on('data', () => resolve(null));
      here.on('connect', () => here.write('GET / HTTP/1.0\r\n\r\n'));
    });
    here.destroy();
    t.not(err, null, 'nothing of the other namespace on this loopback');
  });

  await t.test('connectUpstream, probeTcpOnce and requestStatus take the namespace', async (t) => {
    const ac = new AbortController();
    const up = await connectUpstream({ host: '127.0.0.1', port: PORT, netns: ns.fd }, { timeoutMs: 2000, attempts: 1, backoffMs: 10, highWaterMark: 65536, signal: ac.signal });
    t.equal(up.remotePort, PORT);
    up.destroy();
    t.equal(await probeTcpOnce({ host: '127.0.0.1', port: PORT, netns: ns.fd, signal: ac.signal, connectTimeoutMs: 2000, graceMs: 0 }), true);
    t.equal(await requestStatus({ host: '127.0.0.1', port: PORT, netns: ns.fd, path: '/', signal: ac.signal, requestTimeoutMs: 2000 }), 200);
  });

  await t.test('a namespace fd that is not one fails like a connect, as an error event', async (t) => {
    const s = connectTcp({ host: '127.0.0.1', port: PORT, netns: 0 });
    const [err] = (await once(s, 'error')) as [NodeJS.ErrnoException];
    t.match(err, { code: 'PODSOCK_ERR_NATIVE', message: /setns: EINVAL/ });
    t.throws(() => netnsSocket(0, 4), { message: /setns: EINVAL/ });
  });

  await t.test('the native relay connects inside the namespace', async (t) => {
    const lfd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 4 });
    t.teardown(() => closeFd(lfd));
    const accepted = new Promise<number>((resolve) => {
      const acceptor = acceptConnections(lfd, 4, (fd) => {
        acceptor.close();
        resolve(fd);
      }, () => undefined);
    });
    const peer = connect({ port: inspectFd(lfd).port as number, host: '127.0.0.1', allowHalfOpen: true });
    t.teardown(() => peer.destroy());
    const fd = await accepted;
    const seen: RelayEvent[] = [];
    const done = new Promise<void>((resolve) => {
      relayConnect({ fd, initial: null, ended: false }, { host: '127.0.0.1', port: PORT, netns: ns.fd }, (_err, event) => {
        seen.push(event);
        if (event === RELAY_DONE) resolve();
      }, { timeoutMs: 2000 });
    });
    const chunks: Buffer[] = [];
    peer.on('data', (c: Buffer) => chunks.push(c));
    peer.write('GET / HTTP/1.0\r\n\r\n');
    await once(peer, 'end');
    peer.end();
    await done;
    t.same(seen, [RELAY_CONNECTED, RELAY_DONE]);
    t.match(Buffer.concat(chunks).toString(), MARK);
  });
});
