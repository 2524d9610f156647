import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { configWarnings, idleTimeoutRules, publishInHandover } from '../../../src/check/config-rules.js';
import { proxyExposure, socketCandidates, socketRestriction } from '../../../src/check/exposure-rules.js';
import { imageWarnings } from '../../../src/check/image-rules.js';
import { unitCandidates, unitWarnings } from '../../../src/check/unit-rules.js';
import { formatWarning } from '../../../src/check/warning.js';
import { loadConfig, type ServiceConfig } from '../../../src/config/load.js';
import { parseUnitText } from '../../../src/config/unit-syntax.js';

/** Loads `lines` as svc.container; returns the config and the file. */
function cfgOf(t: Test, lines: string[]): { cfg: ServiceConfig; file: string } {
  const dir = t.testdir({});
  const file = join(dir, 'svc.container');
  writeFileSync(file, lines.join('\n') + '\n');
  return { cfg: loadConfig({ name: 'svc', configFile: file, env: {}, uid: 1000, flags: {}, extraArgs: [] }), file };
}

void t.test('publish-in-handover', async (t) => {
  const { cfg, file } = cfgOf(t, ['[Container]', 'Image=img', 'PublishPort=8080:80', 'PublishPort=9090:90']);
  const w = publishInHandover(cfg);
  t.same(w.map((x) => [x.code, x.file, x.line]), [['publish-in-handover', file, 4]]);
  t.match(w[0]?.message, /^PublishPort '8080:80', '9090:90' in handover mode: /);
  t.same(publishInHandover(cfgOf(t, ['[Container]', 'Image=img', 'PublishPort=8080:80', '[Podsock]', 'Mode=proxy', 'Backend=80']).cfg), [], 'fine in proxy mode');
  t.same(publishInHandover(cfgOf(t, ['[Container]', 'Image=img']).cfg), []);
});

void t.test('proxy exposure, rootless: the published port always; Network=none cannot work', async (t) => {
  const rootless = { rootless: true, socket: null };
  const { cfg, file } = cfgOf(t, ['[Container]', 'Image=img', 'Network=none', '[Podsock]', 'Mode=proxy', 'Backend=80']);
  t.same(proxyExposure(cfg, rootless).map((x) => [x.code, x.file, x.line]), [['proxy-network-none', file, 3]]);
  t.same(proxyExposure(cfg, { rootless: false, socket: null }), [], 'rootful: podsock proxies from inside the container, no network needed');
  t.same(proxyExposure(cfgOf(t, ['[Container]', 'Image=img', 'Network=none']).cfg, rootless), [], 'handover needs no network');
  const bridge = cfgOf(t, ['[Container]', 'Image=img', 'Network=bridge', '[Podsock]', 'Mode=proxy', 'Backend=80']);
  const w = proxyExposure(bridge.cfg, rootless);
  t.same(w.map((x) => [x.code, x.file, x.line]), [['proxy-port-published', bridge.file, 5]]);
  t.match(w[0]?.message, /^rootless proxy mode: .*port podman publishes on 127\.0\.0\.1 .*every local user can connect to that port directly, past the socket unit's access control/);
});

void t.test('proxy exposure, rootful: the bridge address, when the socket unit restricts access', async (t) => {
  const unit = (lines: string[]): ReturnType<typeof parseUnitText> => parseUnitText(['[Socket]', 'ListenStream=/run/app.sock', ...lines].join('\n'), 'svc.socket');
  t.equal(socketRestriction(null), null);
  t.equal(socketRestriction(unit([])), null, "systemd's default 0666");
  t.equal(socketRestriction(unit(['SocketMode=0666'])), null);
  t.equal(socketRestriction(unit(['SocketMode=0777'])), null);
  t.equal(socketRestriction(unit(['SocketMode=0600'])), 'SocketMode=0600');
  t.equal(socketRestriction(unit(['SocketMode=660'])), 'SocketMode=660');
  t.equal(socketRestriction(unit(['IPAddressAllow=127.0.0.1', 'IPAddressAllow=10.0.0.0/8', 'IPAddressDeny=any'])), 'IPAddressAllow=127.0.0.1 10.0.0.0/8, IPAddressDeny=any');
  t.equal(socketRestriction(unit(['IPAddressDeny=any', 'IPAddressDeny='])), null, 'an empty assignment resets the list');

  const restricted = unit(['SocketMode=0600']);
  const rootful = { rootless: false, socket: restricted };
  const dflt = cfgOf(t, ['[Container]', 'Image=img', '[Podsock]', 'Mode=proxy', 'Backend=80']);
  const w = proxyExposure(dflt.cfg, rootful);
  t.same(w.map((x) => [x.code, x.file, x.line]), [['proxy-bridge-reachable', dflt.file, 4]]);
  t.match(w[0]?.message, /^the socket unit restricts access \(SocketMode=0600\), but the container is on podman's default network, .*set Network=none/);
  const named = cfgOf(t, ['[Container]', 'Image=img', 'Network=mynet', '[Podsock]', 'Mode=proxy', 'Backend=80']);
  t.match(proxyExposure(named.cfg, rootful)[0], { code: 'proxy-bridge-reachable', file: named.file, line: 3, message: /on network 'mynet'/ });
  for (const network of ['none', 'host', 'container:db', 'ns:/run/netns/x']) {
    t.same(proxyExposure(cfgOf(t, ['[Container]', 'Image=img', `Network=${network}`, '[Podsock]', 'Mode=proxy', 'Backend=80']).cfg, rootful), [], `Network=${network}: no container address`);
  }
  t.same(proxyExposure(dflt.cfg, { rootless: false, socket: unit([]) }), [], 'an open socket: nothing bypassed');
  t.same(proxyExposure(cfgOf(t, ['[Container]', 'Image=img']).cfg, rootful), [], 'handover: the app has the socket itself');
});

void t.test('the socket unit is looked for beside the service unit names', async (t) => {
  const c = socketCandidates('web', { XDG_RUNTIME_DIR: '/run/user/1000', HOME: '/home/u' }, 1000);
  t.equal(c[0], '/home/u/.config/systemd/user/web.socket');
  t.ok(c.includes('/etc/systemd/system/podsock@web.socket'));
  t.ok(c.includes('/run/user/1000/systemd/user/podsock@.socket'));
  t.equal(socketCandidates('web', {}, 0)[0], '/etc/systemd/system/web.socket', 'root: system units first');
});

void t.test('proxy mode without Backend= is an invalid configuration, not a warning', async (t) => {
  t.throws(() => cfgOf(t, ['[Container]', 'Image=img', '[Podsock]', 'Mode=proxy']), { code: 'PODSOCK_ERR_CONFIG', message: /proxy mode needs the container port/ });
});

void t.test('idle timeout rules', async (t) => {
  const short = cfgOf(t, ['[Container]', 'Image=img', '[Podsock]', 'IdleTimeout=5s', 'StartTimeout=3s']);
  t.same(idleTimeoutRules(short.cfg).map((x) => [x.code, x.line]), [['idle-timeout-short', 4]]);
  const belowStart = cfgOf(t, ['[Container]', 'Image=img', '[Podsock]', 'IdleTimeout=1min']);
  t.same(idleTimeoutRules(belowStart.cfg).map((x) => x.code), ['idle-shorter-than-start']);
  t.equal(idleTimeoutRules(belowStart.cfg)[0]?.message.startsWith("IdleTimeout '1min' is shorter than StartTimeout '1min 30s': "), true);
  const both = cfgOf(t, ['[Container]', 'Image=img', '[Podsock]', 'IdleTimeout=0']);
  t.same(idleTimeoutRules(both.cfg).map((x) => x.code), ['idle-timeout-short', 'idle-shorter-than-start']);
  t.same(idleTimeoutRules(cfgOf(t, ['[Container]', 'Image=img']).cfg), [], 'defaults: 5min idle, 90s start');
  t.same(idleTimeoutRules(cfgOf(t, ['[Container]', 'Image=img', '[Podsock]', 'IdleTimeout=infinity']).cfg), []);
  t.same(idleTimeoutRules(cfgOf(t, ['[Container]', 'Image=img', '[Podsock]', 'IdleTimeout=10s', 'StartTimeout=10s']).cfg), [], 'the bounds are not warnings');
});

void t.test('image rules', async (t) => {
  const never = cfgOf(t, ['[Container]', 'Image=localhost/x:1', 'Pull=never']);
  t.same(imageWarnings(never.cfg, true), []);
  t.same(imageWarnings(never.cfg, false).map((x) => [x.code, x.line]), [['image-missing', 3]]);
  t.match(imageWarnings(never.cfg, false)[0]?.message, /^image 'localhost\/x:1' is not in local storage and the pull policy is 'never': every start will fail/);
  const missing = cfgOf(t, ['[Container]', 'Image=localhost/x:1']);
  t.same(imageWarnings(missing.cfg, false).map((x) => [x.code, x.line]), [['image-not-local', 2]]);
  t.same(imageWarnings(missing.cfg, null, 'podman not found').map((x) => x.code), ['image-unchecked']);
  t.match(imageWarnings(missing.cfg, null, 'podman not found')[0]?.message, /podman not found, ignoring$/);
});

void t.test('unit rules', async (t) => {
  const good = parseUnitText('[Service]\nType=notify\nNotifyAccess=main\nKillMode=mixed\n', 'good.service');
  t.same(unitWarnings(good), []);
  const simple = parseUnitText('[Unit]\nDescription=x\n[Service]\nExecStart=/bin/podsock run x\n', 'simple.service');
  t.same(unitWarnings(simple).map((x) => [x.code, x.file, x.line]), [
    ['unit-type-not-notify', 'simple.service', 3],
    ['unit-kill-mode', 'simple.service', 3],
  ]);
  const wrong = parseUnitText('[Service]\nType=notify\nType=exec\nNotifyAccess=none\nKillMode=process\n', 'w.service');
  t.same(unitWarnings(wrong).map((x) => [x.code, x.line]), [
    ['unit-type-not-notify', 3],
    ['unit-notify-access', 4],
    ['unit-kill-mode', 5],
  ]);
  t.match(unitWarnings(wrong)[0]?.message, /^Type= is 'exec': systemd ignores podsock's READY=1/);
});

void t.test('where units are looked for', async (t) => {
  const env = { HOME: '/home/u', XDG_RUNTIME_DIR: '/run/user/1000' };
  const user = unitCandidates('web', env, 1000);
  t.equal(user[0], '/home/u/.config/systemd/user/web.service');
  t.ok(user.indexOf('/run/user/1000/systemd/user/web.service') < user.indexOf('/etc/systemd/system/web.service'), 'user directories first for a user');
  t.equal(user[user.length - 1], '/lib/systemd/system/podsock@.service');
  t.equal(unitCandidates('web', env, 0)[0], '/etc/systemd/system/web.service', 'system directories first for root');
});

void t.test('formatting and the combined list', async (t) => {
  t.equal(formatWarning({ code: 'c', message: 'm', file: 'f', line: 3 }), 'f:3: warning: m [c]');
  t.equal(formatWarning({ code: 'c', message: 'm', file: 'f' }), 'f: warning: m [c]');
  t.equal(formatWarning({ code: 'c', message: 'm' }), 'warning: m [c]');
  const { cfg } = cfgOf(t, ['[Container]', 'Image=img', 'PublishPort=1:2', '[Podsock]', 'IdleTimeout=1s']);
  t.same(configWarnings(cfg).map((x) => x.code), ['publish-in-handover', 'idle-timeout-short', 'idle-shorter-than-start']);
});
