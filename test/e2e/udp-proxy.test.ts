/**
 * Proxy mode for UDP under the real systemd user manager with real podman: Debian's dnsmasq in the
 * fixture container answers DNS behind a ListenDatagram= socket. From cold, the queries sent while the
 * container starts are answered (dig, a real client, and a burst of our own); 200 concurrent clients
 * each get the answer to their own question; flows end after FlowTimeout= and the service idles out
 * only after the last one.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { hostEnv, uniqueName, waitFor } from './harness.js';
import { installPodsockService, serviceState, waitState } from './podsock-units.js';
import { createSocket } from 'node:dgram';
import { DNSMASQ_ANSWER as ANSWER, DNSMASQ_EXEC, resolveA } from '../helpers/dns.js';

const h = hostEnv(t);

function dnsmasqContainer(name: string, podsock: string[]): string {
  return [
    '[Container]',
    `Image=${h?.fixtureImage ?? ''}`,
    'Network=none',
    'Pull=never',
    `Volume=${h?.podmanRunArgs[1] ?? '/usr:/usr:ro'}`,
    `Exec=${DNSMASQ_EXEC}`,
    '[Podsock]',
    'Mode=proxy',
    'Backend=5353',
    ...podsock,
    '',
  ].join('\n');
}

if (h !== null) {
  await t.test('dnsmasq behind a datagram socket, from cold', async (t) => {
    const name = uniqueName('udp');
    const svc = await installPodsockService(t, h, name, {
      datagram: 'only',
      // dnsmasq sends no READY=1; a query that reaches it before it binds is refused (ICMP) and retried.
      containerFile: dnsmasqContainer(name, ['Ready=started', 'IdleTimeout=3s', 'FlowTimeout=2s']),
    });
    t.equal((await serviceState(h, name)).ActiveState, 'inactive', 'nothing runs before the first datagram');

    // A real client first: dig, one try, a long timeout, so only podsock's queue can make it succeed.
    const dig = await promisify(execFile)('dig', ['@127.0.0.1', '-p', String(svc.port), 'first.podsock.test', '+short', '+tries=1', '+time=60']);
    t.equal(dig.stdout.trim(), ANSWER, "dig's single query sent into the cold start was answered");
    t.equal((await serviceState(h, name)).ActiveState, 'active');

    // 200 clients at once, each from its own socket and with its own name.
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => resolveA('127.0.0.1', svc.port, `c${i}.podsock.test`, { retryMs: 5000, timeoutMs: 30_000 })));
    const wrong = answers.filter((a, i) => !a.response || a.rcode !== 0 || a.name !== `c${i}.podsock.test` || a.address !== ANSWER);
    t.equal(wrong.length, 0, 'each of 200 concurrent clients got the answer to its own question');
    t.ok(answers.every((a) => a.tries === 1), `no client had to ask twice (max ${Math.max(...answers.map((a) => a.tries))})`);

    // One client (one socket: one flow) keeps asking every 500 ms for longer than FlowTimeout +
    // IdleTimeout: its flow keeps the service up.
    const keeper = createSocket('udp4');
    t.teardown(() => keeper.close());
    const until = Date.now() + 7000;
    let answered = 0;
    let lastAnswer = Date.now();
    for (;;) {
      const a = await resolveA('127.0.0.1', svc.port, 'keep.podsock.test', { timeoutMs: 10_000, socket: keeper });
      lastAnswer = Date.now();
      if (a.address === ANSWER) answered++;
      if (Date.now() >= until) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    t.ok(answered >= 10, `one flow was answered throughout (${answered} answers)`);
    t.equal((await serviceState(h, name)).ActiveState, 'active', 'a live flow keeps the service up past IdleTimeout');
    // Then its flow expires (FlowTimeout=2s) and only then does the idle timer (IdleTimeout=3s) run.
    await waitState(h, name, ['inactive'], 60_000);
    const quiet = Date.now() - lastAnswer;
    t.ok(quiet >= 5000, `the service exited only after the flow expired and IdleTimeout passed (${quiet} ms after the last datagram, at least 5000 expected)`);

    // And from cold again, a burst of clients while it starts: all answered.
    const again = await Promise.all(Array.from({ length: 20 }, (_, i) => resolveA('127.0.0.1', svc.port, `b${i}.podsock.test`, { retryMs: 60_000, timeoutMs: 60_000 })));
    t.ok(again.every((a, i) => a.name === `b${i}.podsock.test` && a.address === ANSWER && a.tries === 1), 'a burst sent into the second cold start was answered, once each');
  });
}

if (h !== null) {
  await t.test('ProxyProtocol=v2 on a datagram socket: the backend reads the client address on every datagram', async (t) => {
    const name = uniqueName('udpv2');
    const svc = await installPodsockService(t, h, name, {
      datagram: 'only',
      containerFile: [
        '[Container]',
        `Image=${h.fixtureImage}`,
        'Network=none',
        'Pull=never',
        `Volume=${h.podmanRunArgs[1] ?? '/usr:/usr:ro'}`,
        'Environment=UDP_PORT=9000 UDP_PROXY_V2=1',
        'Exec=/usr/bin/node /app/udp-echo.js',
        '[Podsock]',
        'Mode=proxy',
        'Backend=9000',
        'Ready=started',
        'ProxyProtocol=v2',
        'IdleTimeout=infinity',
        '',
      ].join('\n'),
    });
    // A client on 127.0.0.2: the address the backend reports can only come from the header.
    const client = createSocket('udp4');
    t.teardown(() => client.close());
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.2', resolve));
    const { port } = client.address();
    const replies: string[] = [];
    client.on('message', (m) => replies.push(m.toString()));
    for (let i = 0; i < 3; i++) {
      const before = replies.length;
      const retry = setInterval(() => client.send(`e${i}`, svc.port, '127.0.0.1'), 5000);
      client.send(`e${i}`, svc.port, '127.0.0.1');
      await waitFor(`the reply to datagram ${i}`, async () => replies.length > before, 60_000).finally(() => clearInterval(retry));
    }
    t.same(
      replies.slice(0, 3),
      [0, 1, 2].map((i) => `v2 127.0.0.2 ${port} 127.0.0.1 ${svc.port} e${i}`),
      'each datagram carried a v2 header with the client address and the address it was sent to',
    );
  });
}
