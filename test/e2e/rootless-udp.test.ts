/**
 * Rootless UDP proxy mode: podman cannot be entered, so podsock publishes the backend's container port
 * twice on loopback, `/tcp` for the stream socket and `/udp` for the datagram socket of the same name,
 * checks that both belong to its own uid, and serves dnsmasq over both from one socket unit.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { readLog, uniqueName, waitFor } from './harness.js';
import { commentLogOnFailure, installUserService, rootlessEnv } from './rootless-harness.js';
import { DNSMASQ_ANSWER, DNSMASQ_EXEC } from '../helpers/dns.js';

const r = rootlessEnv(t);

if (r !== null && !r.network) {
  t.pass('no rootless networking', { skip: r.networkReason ?? 'unknown reason' });
} else if (r !== null) {
  await t.test('rootless: one name over TCP and UDP, published as /tcp and /udp', async (t) => {
    const name = uniqueName('rludp');
    const svc = await installUserService(t, r, name, {
      datagram: true,
      containerFile: [
        '[Container]',
        `Image=${r.fixtureImage}`,
        'Pull=never',
        `Volume=${r.podmanRunArgs[1] ?? '/usr:/usr:ro'}`,
        `Exec=${DNSMASQ_EXEC}`,
        '[Podsock]',
        'Mode=proxy',
        'Backend=5353',
        'IdleTimeout=infinity',
        '',
      ].join('\n'),
    });
    commentLogOnFailure(t, svc.log);
    const dig = (...extra: string[]): Promise<string> =>
      promisify(execFile)('dig', ['@127.0.0.1', '-p', String(svc.port), 'r.podsock.test', '+short', '+tries=1', '+time=60', ...extra]).then((x) => x.stdout.trim());
    t.equal(await dig(), DNSMASQ_ANSWER, 'answered over UDP, from cold');
    t.equal(await dig('+tcp'), DNSMASQ_ANSWER, 'answered over TCP');
    // podsock's log is written asynchronously: wait for the podman command line to reach the file.
    const log = await waitFor('the podman command line in the log', async () => (/--publish 127\.0\.0\.1:\d+:5353\/udp/.test(readLog(svc.log)) ? readLog(svc.log) : false), 15_000).catch(() => readLog(svc.log));
    t.match(log, /--publish 127\.0\.0\.1:\d+:5353\/tcp/, 'published for TCP');
    t.match(log, /--publish 127\.0\.0\.1:\d+:5353\/udp/, 'published for UDP');
  });
}
