// The UDP proxy's pure C parts under AddressSanitizer and UndefinedBehaviorSanitizer, through a small
// driver (udp-flows-driver.c: one command a line, one answer a line): the flow table (native/udp-flows.c:
// its bound and the order of eviction, expiry with an injected clock, touch, keys) and the PROXY protocol
// v2 encoder (native/proxy-v2.c) against headers written out by hand from the specification
// (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt, section 2.2).
// Without gcc (and its sanitizer runtimes) this is skipped, except in CI (CI=true), where it fails.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { SANITIZE, SANITIZER_OPTIONS, whySanitizersUnusable } from '../../helpers/sanitizers.js';
import { tmpDir } from '../../helpers/tmp-dir.js';
import { root } from './addon-sources.js';

const SANITIZER_ENV = { ...process.env, ...SANITIZER_OPTIONS };
const REPORT = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/;

const dir = tmpDir(t, 'podsock-udp-flows-');

const missing = whySanitizersUnusable(dir);
if (missing !== null && process.env.CI === 'true') t.fail(`the flow table's sanitizer tests need gcc in CI: ${missing}`);
const skip = missing ?? false;

let driver: string | undefined;
function build(): string {
  if (driver !== undefined) return driver;
  const out = join(dir, 'udp-flows-driver');
  const native = join(root, 'native');
  execFileSync('gcc', ['-std=gnu11', '-Wall', '-Wextra', '-Werror', '-D_GNU_SOURCE', ...SANITIZE, '-I', native, join(native, 'udp-flows.c'), join(native, 'proxy-v2.c'), join(root, 'test', 'unit', 'native', 'udp-flows-driver.c'), '-o', out], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  driver = out;
  return out;
}

/** Run the commands; the answers, one per command. Fails the test on a sanitizer report. */
function run(tt: Test, commands: string[]): string[] {
  const r = spawnSync(build(), { input: `${commands.join('\n')}\nfree\n`, encoding: 'utf8', env: SANITIZER_ENV });
  tt.notMatch(r.stderr, REPORT, 'no sanitizer report');
  tt.equal(r.status, 0, 'the driver exits 0');
  const lines = r.stdout.trimEnd().split('\n');
  tt.equal(lines.pop(), 'ok', 'every flow and the table freed');
  return lines;
}

void t.test('the table is bounded: at max_flows the least recently active flow is evicted first', { skip }, async (t) => {
  const out = run(t, ['init 3 1000', 'insert 10.0.0.1:1000 0', 'insert 10.0.0.2:1000 1', 'insert 10.0.0.3:1000 2', 'touch 10.0.0.1:1000 3', 'insert 10.0.0.4:1000 4', 'insert 10.0.0.5:1000 5', 'count', 'find 10.0.0.2:1000', 'find 10.0.0.3:1000', 'find 10.0.0.1:1000', 'touch 10.0.0.4:1000 6', 'insert 10.0.0.6:1000 7']);
  t.same(out, ['ok', 'ok', 'ok', 'ok', 'ok', 'evicted 10.0.0.2:1000', 'evicted 10.0.0.3:1000', '3', 'none', 'none', 'found 10.0.0.1:1000 3', 'ok', 'evicted 10.0.0.1:1000']);
  // A peer that makes a hundred thousand addresses: every insert past the bound evicts exactly one.
  t.same(run(t, ['init 1000 1000', 'fill 100000 5', 'count', 'find 10.1.134.159:1', 'find 10.1.134.160:1']), ['ok', 'evicted 99000', '1000', 'found fill-99999 5', 'none']);
});

void t.test('the bounds of the table itself', { skip }, async (t) => {
  t.same(run(t, ['init 0 1000']), ['err 22'], 'no flows at all: EINVAL');
  t.same(run(t, ['init 65537 1000']), ['err 22'], 'more than UDP_FLOWS_MAX: EINVAL');
  t.same(run(t, ['init 65536 1000', 'count']), ['ok', '0']);
  t.same(run(t, ['init 8 0']), ['err 22'], 'a zero timeout: EINVAL');
});

void t.test('expiry with the injected clock: idle for >= timeout in either direction', { skip }, async (t) => {
  const out = run(t, [
    'init 10 100',
    'next',
    'insert 192.0.2.1:53 0',
    'insert 192.0.2.2:53 50',
    'next',
    'expire 99',
    'expire 100',
    'next',
    // Traffic either way is a touch: the table has no direction.
    'touch 192.0.2.2:53 120',
    'expire 149',
    'expire 219',
    'next',
    'expire 220',
    'next',
    'count',
  ]);
  t.same(out, ['ok', 'none', 'ok', 'ok', '100', 'expired', 'expired 192.0.2.1:53', '150', 'ok', 'expired', 'expired', '220', 'expired 192.0.2.2:53', 'none', '0']);
  t.same(run(t, ['init 10 100', 'insert 192.0.2.1:1 0', 'insert 192.0.2.2:1 10', 'insert 192.0.2.3:1 20', 'expire 500']), ['ok', 'ok', 'ok', 'ok', 'expired 192.0.2.1:1 192.0.2.2:1 192.0.2.3:1'], 'all idle flows at once, oldest first');
});

void t.test('flows are keyed by family, address, port and IPv6 scope', { skip }, async (t) => {
  const out = run(t, [
    'init 16 1000',
    'insert 127.0.0.1:5000 0',
    'insert 127.0.0.1:5001 0',
    'insert [::ffff:127.0.0.1]:5000 0',
    'insert [fe80::1%2]:5000 0',
    'insert [fe80::1%3]:5000 0',
    'count',
    'find 127.0.0.1:5000',
    'find 127.0.0.1:5001',
    'find [::ffff:127.0.0.1]:5000',
    'find [fe80::1%3]:5000',
    'find [fe80::1%4]:5000',
    'find 127.0.0.2:5000',
    'remove 127.0.0.1:5001',
    'find 127.0.0.1:5001',
    'remove 127.0.0.1:5001',
    'count',
  ]);
  t.same(out, ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', '5', 'found 127.0.0.1:5000 0', 'found 127.0.0.1:5001 0', 'found [::ffff:127.0.0.1]:5000 0', 'found [fe80::1%3]:5000 0', 'none', 'none', 'ok', 'none', 'none', '4']);
});

// Section 2.2: the 12-byte signature; the version (2, high nibble) and command (LOCAL 0x0, PROXY 0x1);
// the family (AF_INET 0x1, AF_INET6 0x2, high nibble) and transport (DGRAM 0x2); the address length
// (network order); then source address, destination address, source port, destination port.
const SIG = '0d0a0d0a000d0a515549540a';

void t.test('PROXY v2 for UDP over IPv4: 0x21 0x12, 12 bytes of addresses', { skip }, async (t) => {
  const [v4, mapped, cap] = run(t, ['v2 192.0.2.1:56324 198.51.100.7:53', 'v2 [::ffff:192.0.2.1]:56324 [::ffff:198.51.100.7]:53', 'v2 192.0.2.1:56324 198.51.100.7:53 27']);
  //                      ver/cmd fam len   src addr  dst addr  sport dport
  const expected = `${SIG}21      12  000c  c0000201  c6336407  dc04  0035`.replace(/ /g, '');
  t.equal(v4, expected, 'byte for byte');
  t.equal(v4?.length, (16 + 12) * 2, '28 bytes');
  t.equal(mapped, expected, 'a v4-mapped client on a dual-stack socket is encoded as IPv4, unmapped');
  t.equal(cap, 'err 28', 'one byte short of room: ENOSPC, nothing written beyond it');
});

void t.test('PROXY v2 for UDP over IPv6: 0x21 0x22, 36 bytes of addresses', { skip }, async (t) => {
  const [v6, mixed, cap] = run(t, ['v2 [2001:db8::1]:1234 [2001:db8::2]:53', 'v2 [::ffff:192.0.2.1]:1234 [2001:db8::2]:53', 'v2 [2001:db8::1]:1234 [2001:db8::2]:53 51']);
  const expected = `${SIG}21 22 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 04d2 0035`.replace(/ /g, '');
  t.equal(v6, expected, 'byte for byte');
  t.equal(v6?.length, (16 + 36) * 2, '52 bytes');
  t.equal(mixed, `${SIG}21 22 0024 00000000000000000000ffffc0000201 20010db8000000000000000000000002 04d2 0035`.replace(/ /g, ''), 'both in one family: the IPv4 one mapped');
  t.equal(cap, 'err 28', 'ENOSPC');
});

void t.test('PROXY v2 LOCAL/UNSPEC where an address is missing', { skip }, async (t) => {
  const local = `${SIG}20 00 0000`.replace(/ /g, '');
  t.same(run(t, ['v2 - -', 'v2 192.0.2.1:1 -', 'v2 - [::1]:53', 'v2 - - 16', 'v2 - - 15']), [local, local, local, local, 'err 28']);
});
