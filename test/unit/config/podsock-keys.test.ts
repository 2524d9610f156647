import { readFileSync } from 'node:fs';
import t from 'tap';
import { FLAG_NAMES, PODSOCK_KEY_DESCRIPTORS, PODSOCK_KEYS } from '../../../src/config/podsock-keys.js';
import { parseSpan, type Mode, type ModeContext } from '../../../src/config/podsock-values.js';
import { parseMaxConnections, parseMaxFlows } from '../../../src/config/podsock-values.js';

const ctx = (mode: Mode): ModeContext => ({ mode, modeWhere: 'the default', modeSetAt: null });

void t.test('one entry per key: unique keys, flags and fields; Mode first', async (t) => {
  t.equal(PODSOCK_KEY_DESCRIPTORS[0]?.key, 'Mode', 'the others are read against it');
  for (const f of ['key', 'flag', 'field'] as const) {
    t.equal(new Set(PODSOCK_KEY_DESCRIPTORS.map((d) => d[f])).size, PODSOCK_KEY_DESCRIPTORS.length, `unique ${f}`);
  }
  t.same(PODSOCK_KEYS, PODSOCK_KEY_DESCRIPTORS.map((d) => d.key));
  for (const d of PODSOCK_KEY_DESCRIPTORS) {
    t.equal(FLAG_NAMES[d.key], d.flag);
    t.match(d.flag, /^--[a-z][a-z-]*$/, `${d.key}: a long flag`);
    t.ok(d.help.length > 0, `${d.key}: has help`);
    t.ok(d.modes.length > 0, `${d.key}: applies somewhere`);
    t.ok(d.refusedOutside === null || d.modes.length < 2, `${d.key}: refused only outside its modes`);
  }
});

void t.test('the default the help names is the value of an unset key', async (t) => {
  const parsers: Record<string, (text: string) => unknown> = {
    IdleTimeout: (text) => parseSpan({ text, key: 'IdleTimeout', where: 'help', location: null }, true, true),
    StartTimeout: (text) => parseSpan({ text, key: 'StartTimeout', where: 'help', location: null }, false, false),
    StopTimeout: (text) => parseSpan({ text, key: 'StopTimeout', where: 'help', location: null }, false, false),
    MaxConnections: (text) => parseMaxConnections({ text, key: 'MaxConnections', where: 'help', location: null }),
    ConnectionIdleTimeout: (text) => (text === 'off' ? null : undefined),
    ProxyProtocol: (text) => (text === 'off' ? [] : undefined),
    FlowTimeout: (text) => parseSpan({ text, key: 'FlowTimeout', where: 'help', location: null }, false, false),
    MaxFlows: (text) => parseMaxFlows({ text, key: 'MaxFlows', where: 'help', location: null }),
  };
  for (const d of PODSOCK_KEY_DESCRIPTORS) {
    const named = /\bdefault ([^\s,;)]+)/.exec(d.help.join(' '));
    if (named === null) continue;
    const parse = parsers[d.key];
    if (parse === undefined) {
      t.fail(`${d.key}: the help names default ${named[1]}; add its parser to this test`);
      continue;
    }
    t.same(parse(named[1] as string), d.absent(ctx(d.modes[0] as Mode)), `${d.key}: default ${named[1]}`);
  }
  t.same(PODSOCK_KEY_DESCRIPTORS[0]?.absent(ctx('handover')), 'handover', "Mode: 'handover (default)'");
});

void t.test('a generated file writes the keys of its mode', async (t) => {
  const byKey = new Map(PODSOCK_KEY_DESCRIPTORS.map((d) => [d.key, d]));
  const v = {
    mode: 'proxy' as const,
    ready: { kind: 'tcp' as const },
    idleTimeoutMs: 300_000,
    startTimeoutMs: 90_000,
    stopTimeoutMs: 10_000,
    backends: [{ name: null, port: 8080 }],
    maxConnections: 4096,
    connectionIdleTimeoutMs: 150_000,
    proxyProtocol: [],
    flowTimeoutMs: 30_000,
    maxFlows: 1024,
  };
  t.same(byKey.get('ConnectionIdleTimeout')?.file(v)?.value, '2min 30s');
  t.equal(byKey.get('ConnectionIdleTimeout')?.file({ ...v, connectionIdleTimeoutMs: null }), null, 'off is left out');
  t.equal(byKey.get('MaxConnections')?.file(v), null, 'the default is left out');
  t.same(byKey.get('MaxConnections')?.file({ ...v, maxConnections: 10 })?.value, '10');
  t.equal(byKey.get('FlowTimeout')?.file(v), null, 'the default flow timeout is left out');
  t.same(byKey.get('FlowTimeout')?.file({ ...v, flowTimeoutMs: 90_000 })?.value, '1min 30s');
  t.equal(byKey.get('MaxFlows')?.file(v), null, 'the default flow limit is left out');
  t.same(byKey.get('MaxFlows')?.file({ ...v, maxFlows: 64 })?.value, '64');
  t.same(byKey.get('Backend')?.file({ ...v, backends: [{ name: 'web', port: 80 }, { name: 'admin', port: 81 }] })?.value, 'web=80 admin=81');
});

void t.test("the README's [Podsock] table has a row for every key, with its flag", async (t) => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  for (const d of PODSOCK_KEY_DESCRIPTORS) t.ok(readme.includes(`| \`${d.key}=\` | \`${d.flag}\` |`), `${d.key}= ${d.flag}`);
});
