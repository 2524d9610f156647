/**
 * Proxy mode, rootful: what podsock opens to reach the app must not bypass the socket unit's access
 * control. A unit whose socket is a 0600 unix socket is served, and while it runs user `nobody` cannot
 * connect to any TCP or unix listener that podsock, podman, conmon or the container opened on the host
 * (they are found by the socket inodes of the service's process tree, so listeners of anything else
 * running on the machine do not count). Before podsock connected from inside the container's network
 * namespace, a `Network=` of the user's made it publish the port on 127.0.0.1, which every local user
 * could reach (podman's DNAT, conmon holding the port).
 *
 * And the container does not choose where podsock connects: a container with CAP_NET_ADMIN that adds
 * an address of its own is still reached on its loopback (podsock used to take the first local IPv4
 * address of the container's routing table).
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parseProcNetTcp, parseProcNetUnix, TCP_STATE, UNIX_FLAG_ACCEPTCON } from '../../src/idle/proc-net.js';
import { descendants, hostEnv, readLog, uniqueName, unitProps, waitFor, type HostEnv } from './harness.js';
import { installPodsockService } from './podsock-units.js';
import { proxyContainerFile } from './service-files.js';

const h = hostEnv(t);

/** A listener as user `nobody` would try it: a TCP host and port, or a unix path ('\0name' when abstract). */
type Listener = { kind: 'tcp'; host: string; port: number; inode: number } | { kind: 'unix'; path: string; inode: number };

/** The socket inodes `pid` and its descendants hold open (/proc/PID/fd links 'socket:[N]'). */
function socketInodes(pid: number): Set<number> {
  const inodes = new Set<number>();
  for (const p of [pid, ...descendants(pid).map((d) => d.pid)]) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue; // gone meanwhile
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${p}/fd/${fd}`));
        if (m !== null) inodes.add(Number(m[1]));
      } catch {
        // closed meanwhile
      }
    }
  }
  return inodes;
}

/** Every TCP and unix stream listener in this network namespace. */
function listeners(): Listener[] {
  const out: Listener[] = [];
  for (const [file, v6] of [['/proc/net/tcp', false], ['/proc/net/tcp6', true]] as const) {
    for (const r of parseProcNetTcp(readFileSync(file, 'utf8'), v6)) {
      if (r.state !== TCP_STATE.LISTEN) continue;
      const host = r.localAddress === '0.0.0.0' ? '127.0.0.1' : r.localAddress === '::' ? '::1' : r.localAddress;
      out.push({ kind: 'tcp', host, port: r.localPort, inode: r.inode });
    }
  }
  for (const r of parseProcNetUnix(readFileSync('/proc/net/unix', 'utf8'))) {
    if ((r.flags & UNIX_FLAG_ACCEPTCON) === 0 || r.path === undefined) continue;
    out.push({ kind: 'unix', path: r.path.startsWith('@') ? `\0${r.path.slice(1)}` : r.path, inode: r.inode });
  }
  return out;
}

const NOBODY_CONNECT = `
const net = require('node:net');
const [kind, a, b] = process.argv.slice(1);
const s = kind === 'tcp' ? net.connect({ host: a, port: Number(b) }) : net.connect({ path: a });
s.setTimeout(3000, () => { console.log('timeout'); process.exit(3); });
s.on('connect', () => { console.log('connected'); process.exit(0); });
s.on('error', (e) => { console.log(e.code); process.exit(1); });
`;

/** Try `l` as user nobody: 'connected', or the error code ('EACCES', 'ECONNREFUSED'...). */
function connectAsNobody(l: Listener): Promise<string> {
  const target = l.kind === 'tcp' ? ['tcp', l.host, String(l.port)] : ['unix', l.path, ''];
  return new Promise((resolve) => {
    const c = spawn('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', process.execPath, '-e', NOBODY_CONNECT, ...target], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, // not the test runner's NODE_OPTIONS
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', () => resolve(out.trim() || 'no answer'));
  });
}

function describe(l: Listener): string {
  return l.kind === 'tcp' ? `tcp ${l.host}:${l.port}` : `unix ${l.path.replace('\0', '@')}`;
}

/** GET / through the unix socket at `path`, as root. */
function getUnix(path: string, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath: path, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    req.on('timeout', () => req.destroy(new Error(`no reply through '${path}' within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** A proxy-mode service for the fixture on a 0600 unix socket in `dir` (world-traversable). */
async function installUnixService(t: Test, h: HostEnv, name: string, dir: string, container: string[], podsock: string[] = []): Promise<{ path: string; log: string }> {
  const path = join(dir, `${name}.sock`);
  const containerFile = proxyContainerFile(h, name, { container, podsock: ['Ready=tcp', 'StartTimeout=20s', 'IdleTimeout=infinity', ...podsock] });
  const svc = await installPodsockService(t, h, name, { containerFile, listen: path, socket: ['SocketMode=0600'] });
  return { path, log: svc.log };
}

if (h !== null && process.getuid?.() === 0) {
  const dir = mkdtempSync(join(tmpdir(), 'podsock-access-'));
  chmodSync(dir, 0o755); // nobody may reach the sockets in it; only their own modes decide
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  await t.test('the probe as nobody can tell an open listener from a closed one', async (t) => {
    const open = net.createServer((s) => s.end());
    const path = join(dir, 'open.sock');
    await new Promise<void>((r) => open.listen(path, r));
    chmodSync(path, 0o666);
    t.teardown(() => open.close());
    t.equal(await connectAsNobody({ kind: 'unix', path, inode: 0 }), 'connected', 'a 0666 socket in the directory accepts nobody');
    chmodSync(path, 0o600);
    t.equal(await connectAsNobody({ kind: 'unix', path, inode: 0 }), 'EACCES', 'a 0600 one refuses nobody');
  });

  for (const network of ['none', 'default', 'podman']) {
    await t.test(`Network=${network}: served through a 0600 unix socket; nobody reaches nothing podsock opened`, async (t) => {
      const name = uniqueName('acc');
      const svc = await installUnixService(t, h, name, dir, network === 'default' ? [] : [`Network=${network}`]);
      const before = new Set(listeners().map((l) => l.inode));
      const reply = await getUnix(svc.path);
      t.match(reply, new RegExp(`^200 hello from ${name}`), 'the app answers through the socket');
      const mainPid = Number((await unitProps(h, `${name}.service`, ['MainPID'])).MainPID);
      t.ok(mainPid > 0, 'the service runs');
      const held = socketInodes(mainPid);
      const opened = listeners().filter((l) => held.has(l.inode) && !before.has(l.inode));
      t.comment(`listeners opened for the service: ${opened.map(describe).join(', ') || 'none'}`);
      for (const l of opened) t.not(await connectAsNobody(l), 'connected', `nobody cannot connect to ${describe(l)}`);
      t.equal(await connectAsNobody({ kind: 'unix', path: svc.path, inode: 0 }), 'EACCES', "nobody cannot use the unit's own 0600 socket");
      t.match(readLog(svc.log), new RegExp(`fixture ${name}: connection #\\d+ via port 8080 from 127\\.0\\.0\\.1:`), "the app saw podsock's connection come from its own loopback");
      await waitFor('podsock to log where it connects', async () => /from inside its network namespace/.test(readLog(svc.log)), 10_000);
    });
  }

  await t.test('a container with CAP_NET_ADMIN that adds an address is still reached on its loopback', async (t) => {
    const name = uniqueName('acn');
    // 10.0.0.1 sorts before podman's 10.88.0.0/16 in the routing table: the first local address the old
    // code took, and one the host does not route to the container. With Ready=notify it looked after
    // READY=1, when the address is there.
    const svc = await installUnixService(t, h, name, dir, [
      'AddCapability=NET_ADMIN',
      'Exec=/bin/sh -c "ip addr add 10.0.0.1/32 dev lo && exec /usr/bin/node /app/fixture-server.js"',
    ], ['Ready=notify']);
    const reply = await getUnix(svc.path, 20_000).catch((err: Error) => err.message);
    t.match(reply, new RegExp(`^200 hello from ${name}`), 'served');
    // podsock's own log (pino) is written a moment after start-up: its debug lines come before this one.
    await waitFor('podsock to log the start', async () => /Container '[^']+' ready/.test(readLog(svc.log)), 10_000);
    t.match(readLog(svc.log), new RegExp(`fixture ${name}: connection #\\d+ via port 8080 from 127\\.0\\.0\\.1:`), 'podsock connected to the loopback inside the container');
    t.notMatch(readLog(svc.log), /"host":"10\.0\.0\.1"/, 'never to the address the container added');
  });
} else if (h !== null) {
  t.pass('not root', { skip: 'rootful proxy mode needs root' });
}
