/**
 * The check rules of health-rules.ts, unit-start-rules.ts and history-rules.ts: each warning, and its
 * absence where the configuration is right.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { healthyWithoutCmd } from '../../../src/check/health-rules.js';
import { idleShorterThanSeenStart } from '../../../src/check/history-rules.js';
import { DEFAULT_TIMEOUT_START_MS, launcherRule, startTimeoutRule } from '../../../src/check/unit-start-rules.js';
import { loadConfig, type ServiceConfig } from '../../../src/config/load.js';
import { parseUnitText } from '../../../src/config/unit-syntax.js';
import type { StatusRecord } from '../../../src/status/status-record.js';

function cfgOf(t: Test, lines: string[]): { cfg: ServiceConfig; file: string } {
  const dir = t.testdir({});
  const file = join(dir, 'svc.container');
  writeFileSync(file, lines.join('\n') + '\n');
  return { cfg: loadConfig({ name: 'svc', configFile: file, env: {}, uid: 1000, flags: {}, extraArgs: [] }), file };
}

const service = (lines: string[]): ReturnType<typeof parseUnitText> => parseUnitText(['[Service]', 'Type=notify', ...lines].join('\n') + '\n', 'svc.service');

void t.test('Ready=healthy without HealthCmd=', async (t) => {
  const proxy = ['Mode=proxy', 'Backend=80'];
  const { cfg, file } = cfgOf(t, ['[Container]', 'Image=img', '[Podsock]', 'Ready=healthy', ...proxy]);
  const w = healthyWithoutCmd(cfg, false);
  t.same(w.map((x) => [x.code, x.file, x.line]), [['healthy-without-healthcmd', file, 4]]);
  t.match(w[0]?.message, /^Ready=healthy without HealthCmd= and image 'img' defines no HEALTHCHECK: .*every start fails.*OCI image format.*HealthCmd=.*--format docker/);
  t.match(healthyWithoutCmd(cfg, null)[0]?.message, /podman could not tell whether image 'img' defines a HEALTHCHECK/);
  t.same(healthyWithoutCmd(cfg, true), [], "the image's own HEALTHCHECK (docker format) is enough");
  const notify = cfgOf(t, ['[Container]', 'Image=img', 'Notify=healthy', '[Podsock]', ...proxy]);
  t.same(healthyWithoutCmd(notify.cfg, false).map((x) => [x.code, x.line]), [['healthy-without-healthcmd', 3]], 'Notify=healthy too, at its line');
  t.same(healthyWithoutCmd(cfgOf(t, ['[Container]', 'Image=img', 'HealthCmd=/bin/true', '[Podsock]', 'Ready=healthy', ...proxy]).cfg, false), [], 'with HealthCmd=');
  t.same(healthyWithoutCmd(cfgOf(t, ['[Container]', 'Image=img']).cfg, false), [], 'another Ready=');
});

void t.test("the unit's TimeoutStartSec= against StartTimeout=", async (t) => {
  const { cfg } = cfgOf(t, ['[Container]', 'Image=img', '[Podsock]', 'StartTimeout=2min']);
  const w = startTimeoutRule(service(['TimeoutStartSec=30']), cfg);
  t.same(w.map((x) => [x.code, x.file, x.line]), [['unit-start-timeout-short', 'svc.service', 3]]);
  t.match(w[0]?.message, /^TimeoutStartSec=30 is shorter than StartTimeout '2min': systemd stops a start .*EXTEND_TIMEOUT_USEC=/);
  t.same(startTimeoutRule(service(['TimeoutSec=1min', 'TimeoutStartSec=3min']), cfg), [], 'the last of the two wins');
  t.same(startTimeoutRule(service(['TimeoutStartSec=3min', 'TimeoutSec=45s']), cfg).map((x) => x.line), [4], 'TimeoutSec= sets it too');
  t.same(startTimeoutRule(service(['TimeoutStartSec=infinity']), cfg), [], 'infinity: no timeout');
  t.same(startTimeoutRule(service(['TimeoutStartSec=0']), cfg), [], '0: no timeout');
  t.same(startTimeoutRule(service(['TimeoutStartSec=2min']), cfg), [], 'equal is fine');
  t.same(startTimeoutRule(service(['TimeoutStartSec=not a span']), cfg), [], 'a value systemd would refuse is not this rule');
  const unset = startTimeoutRule(service([]), cfgOf(t, ['[Container]', 'Image=img', '[Podsock]', `StartTimeout=${DEFAULT_TIMEOUT_START_MS / 1000 + 1}s`]).cfg);
  t.match(unset[0]?.message, /^TimeoutStartSec= is not set \(so systemd's default 1min 30s\) is shorter/);
  t.same(startTimeoutRule(service([]), cfg.startTimeoutMs > DEFAULT_TIMEOUT_START_MS ? cfgOf(t, ['[Container]', 'Image=img']).cfg : cfg), [], 'unset, and the default StartTimeout fits in 90s');
});

void t.test('podsock run without podsock-launch', async (t) => {
  const w = launcherRule(service(['ExecStart=/usr/bin/node /opt/podsock/dist/bin/podsock.cjs run %i']), '/opt/podsock/build/Release/podsock-launch');
  t.same(w.map((x) => [x.code, x.line]), [['unit-without-launcher', 3]]);
  t.same(launcherRule(service(['ExecStart=/usr/bin/env podsock run %i']), '/opt/podsock/build/Release/podsock-launch'), [], 'the installed podsock command is a copy of the launcher (units/podsock@.service)');
  t.same(launcherRule(service(['ExecStart=/usr/local/bin/podsock run web']), null), [], 'the installed command by its path');
  t.match(w[0]?.message, /^ExecStart= runs podsock without podsock-launch: .*ExecStart=\/opt\/podsock\/build\/Release\/podsock-launch NODE PODSOCK_SCRIPT run NAME/);
  t.match(launcherRule(service(['ExecStart=/usr/bin/node /opt/podsock/dist/bin/podsock.cjs run web']), null)[0]?.message, /podsock-launch is not built here/);
  t.same(launcherRule(service(['ExecStart=-/opt/p/build/Release/podsock-launch /usr/bin/node /opt/p/dist/bin/podsock.cjs run web']), null), [], 'through the launcher (a prefix is allowed)');
  t.same(launcherRule(service(['ExecStart=/usr/bin/podman run --rm img']), null), [], 'a unit that does not run podsock');
  t.same(launcherRule(service(['ExecStart=/usr/local/bin/podsock check web']), null), [], 'podsock, but not run');
  t.same(launcherRule(service([]), null), [], 'no ExecStart=');
});

void t.test('IdleTimeout= shorter than the start time seen in the state directory', async (t) => {
  const rec = (coldStartsMs: number[]): StatusRecord => ({ coldStartsMs } as unknown as StatusRecord);
  const { cfg, file } = cfgOf(t, ['[Container]', 'Image=img', '[Podsock]', 'IdleTimeout=2s']);
  const w = idleShorterThanSeenStart(cfg, rec([1500, 2500, 9000]), '/run/podsock/state/svc.status');
  t.same(w.map((x) => [x.code, x.file, x.line]), [['idle-shorter-than-seen-start', file, 4]]);
  t.match(w[0]?.message, /^IdleTimeout '2s' is shorter than the time this service usually takes to start, 2s 500ms \(the median of the last 3 cold starts recorded in '\/run\/podsock\/state\/svc\.status'\)/);
  t.same(idleShorterThanSeenStart(cfg, rec([1500, 1800, 9000]), 'f'), [], 'the usual start (median) fits, one slow start does not count');
  t.same(idleShorterThanSeenStart(cfg, rec([]), 'f'), [], 'no start recorded');
  t.same(idleShorterThanSeenStart(cfg, null, 'f'), [], 'no record');
  t.same(idleShorterThanSeenStart(cfgOf(t, ['[Container]', 'Image=img', '[Podsock]', 'IdleTimeout=infinity']).cfg, rec([5000]), 'f'), [], 'no idle timeout');
});
