// The UDP benchmark's floor relay (scripts/bench/udp-relay.c) forwards each client's datagrams through
// a socket of its own and brings the answers back to that client: a relay that mixed up clients or lost
// datagrams would make the benchmark's "relay" figures meaningless.
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { freePort } from '../../../scripts/bench/host.js';
import { requestResponse } from '../../../scripts/bench/udp-load.js';
import { buildRelay, startRelay } from '../../../scripts/bench/udp-relay.js';

// setns(2) into a network namespace, even our own, needs CAP_SYS_ADMIN.
const root = process.getuid?.() === 0;

void t.test('each client gets its own answers through its own upstream socket', { skip: root ? false : 'setns(2) needs root' }, async (t) => {
  const echo = createSocket('udp4');
  const sources = new Set<number>();
  echo.on('message', (m, from) => {
    sources.add(from.port);
    echo.send(m, from.port, from.address);
  });
  await new Promise<void>((resolve) => echo.bind(0, '127.0.0.1', resolve));
  t.teardown(() => echo.close());
  const dir = mkdtempSync(join(tmpdir(), 'podsock-udp-relay-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const relay = await startRelay(await buildRelay(dir), port, '/proc/self/ns/net', '127.0.0.1', (echo.address() as AddressInfo).port);
  t.teardown(() => relay.stop(1000));

  const r = await requestResponse({ host: '127.0.0.1', port }, 4, 500, 200);
  t.ok(r.answered > 20, `answers came back through the relay (${r.answered})`);
  t.equal(r.late, 0, 'no client got an answer meant for another or for an older datagram');
  t.equal(r.resent, 0, 'nothing was lost on the way');
  t.equal(sources.size, 4, 'the echo saw one source port per client');
});

void t.test('a relay that cannot start says why', { skip: root ? false : 'setns(2) needs root' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'podsock-udp-relay-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const binary = await buildRelay(dir);
  await t.rejects(startRelay(binary, await freePort(), join(dir, 'no-such-netns'), '127.0.0.1', 9), /udp-relay did not start: setns: No such file or directory/);
});
