/**
 * ProxyProtocol= under the real systemd user manager with real podman and a real receiver: Debian's
 * nginx (the host's binary, run in the fixture image through its /usr mount) listens with
 * `listen 8080 proxy_protocol;` and logs `$proxy_protocol_addr`. The client connects from 127.0.0.2,
 * so an address nginx reports can only be the client's (podsock reaches nginx from the container's
 * loopback or its own address, never 127.0.0.2).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { rawHttpGet } from '../helpers/raw-http.js';
import { hostEnv, readLog, uniqueName, waitFor, type HostEnv } from './harness.js';
import { installPodsockService } from './podsock-units.js';

const h = hostEnv(t);

/** An nginx prefix directory (config, logs, temp files) the container mounts read-write at the same path. */
function nginxDir(h: HostEnv, name: string): string {
  const dir = join(h.stateDir, 'nginx', name);
  mkdirSync(dir, { recursive: true });
  const conf = [
    // Foreground, one process: no user switch (the fixture has no 'nobody'), stopped by podman stop.
    'daemon off;',
    'master_process off;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log info;`,
    'events {}',
    'http {',
    `  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;`,
    `  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
    `  log_format pp '$proxy_protocol_addr $proxy_protocol_port $remote_addr "$request"';`,
    `  access_log ${dir}/access.log pp;`,
    '  server {',
    '    listen 8080 proxy_protocol;',
    `    return 200 "client=$proxy_protocol_addr:$proxy_protocol_port\\n";`,
    '  }',
    '}',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'nginx.conf'), conf);
  return dir;
}

/** A proxy-mode .container file running nginx from `dir` behind podsock with ProxyProtocol=`version`. */
function nginxContainer(h: HostEnv, dir: string, version: string): string {
  return [
    '[Container]',
    `Image=${h.fixtureImage}`,
    'Pull=never',
    `Volume=${h.podmanRunArgs[1] ?? '/usr:/usr:ro'}`,
    `Volume=${dir}:${dir}`,
    `Exec=/usr/sbin/nginx -p ${dir} -c ${dir}/nginx.conf -e ${dir}/error.log`,
    '[Podsock]',
    'Mode=proxy',
    'Backend=8080',
    `ProxyProtocol=${version}`,
    'IdleTimeout=infinity',
    '',
  ].join('\n');
}

/** GET `path` from 127.0.0.2; resolves with the client's port and the whole reply. */
async function getFrom127002(port: number, path: string): Promise<{ clientPort: number; reply: string }> {
  const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' });
  let clientPort = 0;
  s.once('connect', () => (clientPort = s.localPort as number));
  const reply = await rawHttpGet(s, path);
  return { clientPort, reply };
}

if (h !== null) {
  for (const version of ['v1', 'v2'] as const) {
    await t.test(`ProxyProtocol=${version}: nginx logs the client's address, not podsock's`, async (t) => {
      const name = uniqueName(`pp-${version}`);
      const dir = nginxDir(h, name);
      const svc = await installPodsockService(t, h, name, { containerFile: nginxContainer(h, dir, version) });
      for (const path of ['/first', '/second']) {
        const r = await getFrom127002(svc.port, path);
        t.match(r.reply, /^HTTP\/1\.1 200 /, `${path}: answered (nginx accepted the header)`);
        t.match(r.reply, new RegExp(`client=127\\.0\\.0\\.2:${r.clientPort}\\n$`), `${path}: nginx saw the client's address and port`);
        const line = await waitFor(`the access log line of ${path}`, async () => readLog(join(dir, 'access.log')).split('\n').find((l) => l.includes(`"GET ${path} `)), 15_000);
        t.match(line, new RegExp(`^127\\.0\\.0\\.2 ${r.clientPort} (\\S+) "GET ${path} HTTP/1\\.0"$`), `${path}: $proxy_protocol_addr in the access log`);
        t.not(line.split(' ')[2], '127.0.0.2', 'the connection itself came from podsock, not from the client');
      }
      // (The readiness probe's connection, closed before any byte, is logged as 'client closed connection
      // while reading PROXY protocol': that one is expected.)
      t.notMatch(readLog(join(dir, 'error.log')), /broken header/, 'no header nginx could not parse');
    });
  }

  // A unix client has no address: v1 says UNKNOWN, v2 sends AF_UNIX (client-header.ts says why). nginx
  // must take both and serve the request, with no client address to report.
  for (const version of ['v1', 'v2'] as const) {
    await t.test(`ProxyProtocol=${version} on a unix socket: nginx accepts the header and serves`, async (t) => {
      const name = uniqueName(`ppu-${version}`);
      const dir = nginxDir(h, name);
      const path = join(h.xdgRuntimeDir, `${name}.sock`);
      await installPodsockService(t, h, name, { containerFile: nginxContainer(h, dir, version), listen: path });
      const reply = await rawHttpGet(net.connect(path), '/unix');
      t.match(reply, /^HTTP\/1\.1 200 /, 'answered');
      t.match(reply, /client=:\n$/, 'no client address');
      t.notMatch(readLog(join(dir, 'error.log')), /broken header/, 'no header nginx could not parse');
    });
  }
}
