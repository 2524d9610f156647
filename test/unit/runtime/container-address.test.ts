import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { containerIPv4, directBackendPossible, parseLocalIPv4, readPidfile } from '../../../src/runtime/container-address.js';

/** /proc/PID/net/fib_trie of a container on podman 4.3.1's default bridge network, as read on this machine's kernel. */
const CONTAINER_FIB_TRIE = `Main:
  +-- 0.0.0.0/1 2 0 2
     +-- 0.0.0.0/4 2 0 2
        |-- 0.0.0.0
           /0 universe UNICAST
        +-- 10.88.0.0/16 2 0 2
           +-- 10.88.0.0/21 2 0 2
              |-- 10.88.0.0
                 /16 link UNICAST
              |-- 10.88.4.104
                 /32 host LOCAL
           |-- 10.88.255.255
              /32 link BROADCAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/1 2 0 2
     +-- 0.0.0.0/4 2 0 2
        |-- 0.0.0.0
           /0 universe UNICAST
        +-- 10.88.0.0/16 2 0 2
           +-- 10.88.0.0/21 2 0 2
              |-- 10.88.0.0
                 /16 link UNICAST
              |-- 10.88.4.104
                 /32 host LOCAL
           |-- 10.88.255.255
              /32 link BROADCAST
`;

void t.test('the container address is its local /32, loopback, networks and broadcasts excluded', async (t) => {
  t.same(parseLocalIPv4(CONTAINER_FIB_TRIE), ['10.88.4.104']);
  t.same(parseLocalIPv4(''), []);
  t.same(parseLocalIPv4('  |-- 127.0.0.1\n     /32 host LOCAL\n'), [], 'loopback only: nothing');
  t.same(parseLocalIPv4('  |-- 10.0.0.2\n     /32 host LOCAL\n  |-- 192.168.7.9\n     /32 host LOCAL\n  |-- 10.0.0.2\n     /32 host LOCAL\n'), ['10.0.0.2', '192.168.7.9'], 'several, in order, once each');
  t.same(parseLocalIPv4('  |-- 10.0.0.0\n     /24 link UNICAST\n'), [], 'a network is not an address');
  t.same(parseLocalIPv4('  |-- 10.0.0.2'), [], 'a truncated table');
});

void t.test('the host can use the container address only rootful on podman\'s default network', async (t) => {
  t.equal(directBackendPossible({ rootless: false, podmanOptions: [] }), true);
  t.equal(directBackendPossible({ rootless: false, podmanOptions: ['--env', 'A=1', '--memory', '64m'] }), true);
  t.equal(directBackendPossible({ rootless: true, podmanOptions: [] }), false, 'rootless: not routable from the host');
  for (const opts of [['--network', 'bridge'], ['--network=host'], ['--net', 'none'], ['--net=mynet'], ['--pod', 'p'], ['--pod=p']]) {
    t.equal(directBackendPossible({ rootless: false, podmanOptions: opts }), false, `user's choice kept: ${opts.join(' ')}`);
  }
  t.equal(directBackendPossible({ rootless: false, podmanOptions: ['--env', 'X=--network'] }), true, 'a value is not an option');
});

void t.test('containerIPv4 reads the pidfile and that process\'s table, naming what is missing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podsock-addr-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pidfile = join(dir, 'c.pid');
  t.throws(() => containerIPv4(pidfile, 'podsock-web', join(dir, 'proc')), { code: 'PODSOCK_ERR_PODMAN', message: /Cannot reach container 'podsock-web': podman wrote no container pid to '.*c\.pid'/ });
  writeFileSync(pidfile, 'garbage\n');
  t.equal(readPidfile(pidfile), null);
  writeFileSync(pidfile, '4242\n');
  t.equal(readPidfile(pidfile), 4242);
  t.throws(() => containerIPv4(pidfile, 'podsock-web', join(dir, 'proc')), { code: 'PODSOCK_ERR_PODMAN', message: /cannot read its network \(pid 4242\)/ });
  mkdirSync(join(dir, 'proc', '4242', 'net'), { recursive: true });
  writeFileSync(join(dir, 'proc', '4242', 'net', 'fib_trie'), '  |-- 127.0.0.1\n     /32 host LOCAL\n');
  t.throws(() => containerIPv4(pidfile, 'podsock-web', join(dir, 'proc')), { code: 'PODSOCK_ERR_PODMAN', message: /no IPv4 address besides loopback \(set Network=/ });
  writeFileSync(join(dir, 'proc', '4242', 'net', 'fib_trie'), CONTAINER_FIB_TRIE);
  t.equal(containerIPv4(pidfile, 'podsock-web', join(dir, 'proc')), '10.88.4.104');
});
