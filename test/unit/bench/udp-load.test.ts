// The UDP benchmark's load keeps exactly one datagram in flight per client, also when datagrams are
// lost or answered late (an earlier version resent on a timer and let in-flight datagrams pile up).
import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { requestResponse } from '../../../scripts/bench/udp-load.js';

/** An echo that holds each datagram `holdMs` and drops the first `dropFirst` from every client. */
async function echo(t: Test, holdMs: number, dropFirst: number): Promise<{ port: number; maxHeld: () => number; seen: () => number }> {
  const s = createSocket('udp4');
  const held = new Map<number, number>();
  const got = new Map<number, number>();
  let maxHeld = 0;
  let seen = 0;
  let closed = false;
  s.on('message', (m, from) => {
    seen++;
    const n = (got.get(from.port) ?? 0) + 1;
    got.set(from.port, n);
    if (n <= dropFirst) return;
    const h = (held.get(from.port) ?? 0) + 1;
    held.set(from.port, h);
    maxHeld = Math.max(maxHeld, h);
    setTimeout(() => {
      held.set(from.port, held.get(from.port)! - 1);
      if (!closed) s.send(m, from.port, from.address);
    }, holdMs);
  });
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  t.teardown(() => {
    closed = true;
    s.close();
  });
  return { port: (s.address() as AddressInfo).port, maxHeld: () => maxHeld, seen: () => seen };
}

void t.test('one datagram in flight per client, each answer sends the next', async (t) => {
  const e = await echo(t, 5, 0);
  const r = await requestResponse({ host: '127.0.0.1', port: e.port }, 4, 700, 200);
  t.equal(e.maxHeld(), 1, 'the echo never held two datagrams of one client');
  t.ok(r.answered > 4, `round trips were answered (${r.answered})`);
  t.equal(r.resent, 0, 'nothing lost, nothing resent');
  t.ok(e.seen() <= r.answered + 4, `the echo saw at most one unanswered datagram per client (${e.seen()} seen, ${r.answered} answered)`);
});

void t.test('a lost datagram is sent again once, and a late answer does not add a second one in flight', async (t) => {
  const lost = await echo(t, 0, 1);
  const r = await requestResponse({ host: '127.0.0.1', port: lost.port }, 3, 600, 100);
  t.equal(r.resent, 3, 'each client resent its one lost datagram');
  t.ok(r.answered > 3, `and went on (${r.answered} answered)`);
  // Answers slower than the resend time: each resend gives up a number whose answer then comes late.
  const slow = await echo(t, 150, 0);
  const s = await requestResponse({ host: '127.0.0.1', port: slow.port }, 2, 700, 100);
  t.ok(s.late > 0, `late answers were seen (${s.late}) and ignored`);
  t.ok(slow.maxHeld() <= 2, `one current and at most one given-up datagram per client at the echo (max ${slow.maxHeld()})`);
});
