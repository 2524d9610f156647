import t from 'tap';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Backends } from '../../../src/activation/backends.js';
import { removeRunFiles, runFilePaths, runFilesFor } from '../../../src/activation/run-files.js';
import type { ServiceConfig } from '../../../src/config/load.js';

const proxy = { mode: 'proxy', containerName: 'podsock-web', backends: [{ port: 8080 }, { port: 9090 }] } as ServiceConfig;

void t.test('run files: the cidfile always, conmon pid file when detached, the pid file when direct', async (t) => {
  t.same(runFilesFor('/run/p', 'web', { detached: false, direct: false }), { cidfile: '/run/p/web.cid', conmonPidfile: null, pidfile: null });
  const all = runFilesFor('/run/p', 'web', { detached: true, direct: true });
  t.same(all, { cidfile: '/run/p/web.cid', conmonPidfile: '/run/p/web.conmon.pid', pidfile: '/run/p/web.pid' });
  t.same(runFilePaths(all), ['/run/p/web.cid', '/run/p/web.pid', '/run/p/web.conmon.pid'], "the plan's unlink order");
});

void t.test('run files: removed when present, missing ones are fine', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podsock-runfiles-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = runFilesFor(dir, 'web', { detached: true, direct: true });
  writeFileSync(f.cidfile, 'abc');
  writeFileSync(f.conmonPidfile as string, '1');
  removeRunFiles(f);
  removeRunFiles(f);
  t.notOk(existsSync(f.cidfile));
  t.notOk(existsSync(f.conmonPidfile as string));
});

void t.test('published: one loopback port per backend, in backend order', async (t) => {
  const b = new Backends({ cfg: proxy, direct: false, files: runFilesFor('/run/p', 'web', { detached: false, direct: false }), hostPorts: [40001, 40002], uid: 0 });
  t.same(b.publish, [
    { hostPort: 40001, containerPort: 8080 },
    { hostPort: 40002, containerPort: 9090 },
  ]);
  t.same(b.list(), [
    { host: '127.0.0.1', port: 40001 },
    { host: '127.0.0.1', port: 40002 },
  ]);
  b.close();
});

void t.test('published: a backend of datagram sockets is published as /udp too, and flows go there', async (t) => {
  const b = new Backends({
    cfg: proxy,
    direct: false,
    files: runFilesFor('/run/p', 'web', { detached: false, direct: false }),
    hostPorts: [40001, 40002],
    udpHostPorts: [null, 40003],
    uid: 0,
  });
  t.same(b.publish, [
    { hostPort: 40001, containerPort: 8080 },
    { hostPort: 40002, containerPort: 9090 },
    { hostPort: 40003, containerPort: 9090, protocol: 'udp' },
  ]);
  t.same(b.list(), [
    { host: '127.0.0.1', port: 40001 },
    { host: '127.0.0.1', port: 40002, udpPort: 40003 },
  ]);
  b.close();
});

void t.test('direct: nothing published, no address before the namespace is open', async (t) => {
  const b = new Backends({ cfg: proxy, direct: true, files: runFilesFor('/run/p', 'web', { detached: true, direct: true }), hostPorts: [], uid: 0 });
  t.same(b.publish, []);
  t.same(b.list(), []);
  b.close();
});

void t.test('handover: no backends, and nothing to reach', async (t) => {
  const cfg = { mode: 'handover', containerName: 'podsock-web', backends: [] } as unknown as ServiceConfig;
  const b = new Backends({ cfg, direct: false, files: runFilesFor('/run/p', 'web', { detached: false, direct: false }), hostPorts: [], uid: 0 });
  t.same(b.publish, []);
  t.same(b.list(), []);
  b.reach();
  b.close();
});
