import t from 'tap';
import { resolvePodsockSettings, type PodsockKey, type PodsockSettings } from '../../../src/config/podsock-section.js';
import { parseUnitText } from '../../../src/config/unit-syntax.js';
import { caught } from '../../helpers/caught.js';

const FILE = '/etc/podsock/web.container';

/** [Podsock] body starts at line 2. */
function resolve(body: string | null, flags: Partial<Record<PodsockKey, string>> = {}): PodsockSettings {
  if (body === null) return resolvePodsockSettings(undefined, null, flags);
  const unit = parseUnitText(`[Podsock]\n${body}\n`, FILE);
  return resolvePodsockSettings(unit.sections[0], FILE, flags);
}

void t.test('defaults', async (t) => {
  t.same(resolve(null), {
    mode: 'handover',
    ready: { kind: 'started' },
    idleTimeoutMs: 300_000,
    startTimeoutMs: 90_000,
    stopTimeoutMs: 10_000,
    backends: [],
    maxConnections: 4096,
    connectionIdleTimeoutMs: null,
    proxyProtocol: [],
    flowTimeoutMs: 30_000,
    maxFlows: 1024,
    keyLines: {},
  });
  t.same(resolve(''), resolve(null));
});

void t.test('proxy mode defaults to Ready=tcp', async (t) => {
  const s = resolve('Mode=proxy\nBackend=8080');
  t.equal(s.mode, 'proxy');
  t.same(s.ready, { kind: 'tcp' });
  t.same(s.backends, [{ name: null, port: 8080 }]);
  t.same(s.keyLines, { Mode: 2, Backend: 3 });
});

void t.test('every value from the file', async (t) => {
  const s = resolve('Mode=proxy\nReady=http:/healthz?full=1\nIdleTimeout=1h 30min\nStartTimeout=2min\nStopTimeout=500ms\nBackend=web=8080 admin=8443\nMaxConnections=10');
  t.same(s, {
    mode: 'proxy',
    ready: { kind: 'http', path: '/healthz?full=1' },
    idleTimeoutMs: 5_400_000,
    startTimeoutMs: 120_000,
    stopTimeoutMs: 500,
    backends: [{ name: 'web', port: 8080 }, { name: 'admin', port: 8443 }],
    maxConnections: 10,
    connectionIdleTimeoutMs: null,
    proxyProtocol: [],
    flowTimeoutMs: 30_000,
    maxFlows: 1024,
    keyLines: { Mode: 2, Ready: 3, IdleTimeout: 4, StartTimeout: 5, StopTimeout: 6, Backend: 7, MaxConnections: 8 },
  });
});

void t.test('readiness kinds', async (t) => {
  t.same(resolve('Ready=notify').ready, { kind: 'notify' });
  t.same(resolve('Ready=started').ready, { kind: 'started' });
  t.same(resolve('Mode=proxy\nBackend=1\nReady=http').ready, { kind: 'http', path: '/' });
  t.same(resolve('Mode=proxy\nBackend=1\nReady=healthy').ready, { kind: 'healthy' });
  t.same(resolve('Mode=proxy\nBackend=1\nReady=tcp').ready, { kind: 'tcp' });
});

void t.test('IdleTimeout: infinity and 0', async (t) => {
  t.equal(resolve('IdleTimeout=infinity').idleTimeoutMs, null);
  t.equal(resolve('IdleTimeout=0').idleTimeoutMs, 0);
  t.equal(resolve('IdleTimeout=5min\nIdleTimeout=').idleTimeoutMs, 300_000);
});

void t.test('flags win over the file; the last file assignment wins', async (t) => {
  const s = resolve('Mode=proxy\nMode=handover\nIdleTimeout=1min', { Mode: 'proxy', IdleTimeout: '2min', Backend: '9000', Ready: 'notify' });
  t.equal(s.mode, 'proxy');
  t.equal(s.idleTimeoutMs, 120_000);
  t.same(s.backends, [{ name: null, port: 9000 }]);
  t.same(s.ready, { kind: 'notify' });
  t.equal(resolve('Mode=proxy\nMode=handover').mode, 'handover');
  t.equal(resolve(null, { MaxConnections: '1000000' }).maxConnections, 1_000_000);
});

void t.test('errors name file:line and key, or the flag, and list allowed values', async (t) => {
  const cases: Array<[string | null, Partial<Record<PodsockKey, string>>, string, string]> = [
    ['Moed=proxy', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:2: unknown key 'Moed' in section [Podsock] (known keys: Mode, Ready, IdleTimeout, StartTimeout, StopTimeout, Backend, MaxConnections, ConnectionIdleTimeout, ProxyProtocol, FlowTimeout, MaxFlows)`],
    ['Mode=socket', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:2: Mode: invalid mode 'socket' (allowed: 'handover', 'proxy')`],
    [null, { Mode: 'Proxy' }, 'PODSOCK_ERR_CONFIG', `--mode: invalid mode 'Proxy' (allowed: 'handover', 'proxy')`],
    ['Ready=up', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:2: Ready: invalid readiness 'up' (allowed with mode 'handover': 'started', 'notify')`],
    ['Mode=proxy\nBackend=1\nReady=up', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:4: Ready: invalid readiness 'up' (allowed with mode 'proxy': 'started', 'notify', 'tcp', 'http', 'http:/PATH', 'healthy')`],
    ['Ready=tcp', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:2: Ready: readiness 'tcp' needs proxy mode, but the mode is 'handover' (the default); with mode 'handover' use one of 'started', 'notify'`],
    ['Mode=handover\nReady=healthy', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:3: Ready: readiness 'healthy' needs proxy mode, but the mode is 'handover' (set by ${FILE}:2: Mode); with mode 'handover' use one of 'started', 'notify'`],
    ['Mode=proxy\nBackend=1\nReady=http', { Mode: 'handover' }, 'PODSOCK_ERR_CONFIG', `${FILE}:4: Ready: readiness 'http' needs proxy mode, but the mode is 'handover' (set by --mode); with mode 'handover' use one of 'started', 'notify'`],
    ['Mode=proxy\nBackend=1\nReady=http:healthz', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:4: Ready: invalid readiness 'http:healthz': the path after 'http:' must start with '/' and contain no spaces (at most 2048 characters)`],
    [null, { Mode: 'proxy', Backend: '1', Ready: 'http:/a b' }, 'PODSOCK_ERR_CONFIG', `--ready: invalid readiness 'http:/a b': the path after 'http:' must start with '/' and contain no spaces (at most 2048 characters)`],
    ['IdleTimeout=5 mins', {}, 'PODSOCK_ERR_TIMESPAN', `${FILE}:2: Invalid time span for IdleTimeout: '5 mins' (expected e.g. '90s', '5min', '1h 30min' or 'infinity')`],
    [null, { IdleTimeout: 'soon' }, 'PODSOCK_ERR_TIMESPAN', `Invalid time span for --idle-timeout: 'soon' (expected e.g. '90s', '5min', '1h 30min' or 'infinity')`],
    ['StartTimeout=infinity', {}, 'PODSOCK_ERR_TIMESPAN', `${FILE}:2: StartTimeout: 'infinity' is not allowed here; give a time span such as '90s' or '5min'`],
    [null, { StopTimeout: '0' }, 'PODSOCK_ERR_TIMESPAN', `--stop-timeout: must be greater than 0, got '0'`],
    ['StopTimeout=-5s', {}, 'PODSOCK_ERR_TIMESPAN', `${FILE}:2: Invalid time span for StopTimeout: '-5s' (expected e.g. '90s', '5min', '1h 30min' or 'infinity')`],
    ['Mode=proxy', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:2: Mode: proxy mode needs the container port to forward to: set Backend= in [Podsock] (e.g. 'Backend=8080') or --backend`],
    [null, { Mode: 'proxy' }, 'PODSOCK_ERR_CONFIG', `--mode: proxy mode needs the container port to forward to: set Backend= in [Podsock] (e.g. 'Backend=8080') or --backend`],
    ['Backend=8080', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:2: Backend: a backend is only used in proxy mode, but the mode is 'handover' (the default)`],
    ['Mode=proxy\nBackend=0', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:3: Backend: invalid port '0' in '0' (expected 1-65535)`],
    ['Mode=proxy\nBackend=65536', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:3: Backend: invalid port '65536' in '65536' (expected 1-65535)`],
    ['Mode=proxy\nBackend=http', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:3: Backend: invalid port 'http' in 'http' (expected 1-65535)`],
    ['Mode=proxy\nBackend=web=80 api=+81', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:3: Backend: invalid port '+81' in 'web=80 api=+81' (expected 1-65535)`],
    ['Mode=proxy\nBackend=8080 web=80', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:3: Backend: invalid backend '8080' in '8080 web=80' (expected one port such as '8080', or NAME=PORT pairs such as 'web=8080 admin=8443', NAME being a socket's FileDescriptorName=)`],
    ['Mode=proxy\nBackend==80', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:3: Backend: invalid backend '=80' in '=80' (expected one port such as '8080', or NAME=PORT pairs such as 'web=8080 admin=8443', NAME being a socket's FileDescriptorName=)`],
    ['Mode=proxy\nBackend=a:b=80', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:3: Backend: invalid backend 'a:b=80' in 'a:b=80' (expected one port such as '8080', or NAME=PORT pairs such as 'web=8080 admin=8443', NAME being a socket's FileDescriptorName=)`],
    ['Mode=proxy\nBackend=web=80 web=81', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:3: Backend: backend 'web' is given twice in 'web=80 web=81'`],
    ['MaxConnections=0', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:2: MaxConnections: invalid connection limit '0' (expected an integer from 1 to 1000000)`],
    [null, { MaxConnections: '1000001' }, 'PODSOCK_ERR_CONFIG', `--max-connections: invalid connection limit '1000001' (expected an integer from 1 to 1000000)`],
    [null, { MaxConnections: '1e3' }, 'PODSOCK_ERR_CONFIG', `--max-connections: invalid connection limit '1e3' (expected an integer from 1 to 1000000)`],
    ['Mode=proxy\nBackend=1\nConnectionIdleTimeout=5 mins', {}, 'PODSOCK_ERR_TIMESPAN', `${FILE}:4: Invalid time span for ConnectionIdleTimeout: '5 mins' (expected e.g. '90s', '5min', '1h 30min' or 'infinity')`],
    [null, { Mode: 'proxy', Backend: '1', ConnectionIdleTimeout: '-1s' }, 'PODSOCK_ERR_TIMESPAN', `Invalid time span for --connection-idle-timeout: '-1s' (expected e.g. '90s', '5min', '1h 30min' or 'infinity')`],
    ['ConnectionIdleTimeout=30s', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:2: ConnectionIdleTimeout: a connection idle timeout only applies in proxy mode (in handover mode the container owns the connections), but the mode is 'handover' (the default)`],
    [null, { ConnectionIdleTimeout: '30s' }, 'PODSOCK_ERR_CONFIG', `--connection-idle-timeout: a connection idle timeout only applies in proxy mode (in handover mode the container owns the connections), but the mode is 'handover' (the default)`],
    ['FlowTimeout=30s', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:2: FlowTimeout: flows are how proxy mode serves datagram sockets (in handover mode the container reads them itself), but the mode is 'handover' (the default)`],
    ['Mode=proxy\nBackend=1\nFlowTimeout=0', {}, 'PODSOCK_ERR_TIMESPAN', `${FILE}:4: FlowTimeout: must be greater than 0, got '0'`],
    [null, { Mode: 'proxy', Backend: '1', FlowTimeout: 'infinity' }, 'PODSOCK_ERR_TIMESPAN', `--flow-timeout: 'infinity' is not allowed here; give a time span such as '90s' or '5min'`],
    ['Mode=proxy\nBackend=1\nMaxFlows=0', {}, 'PODSOCK_ERR_CONFIG', `${FILE}:4: MaxFlows: invalid flow limit '0' (expected an integer from 1 to 65536)`],
    [null, { Mode: 'proxy', Backend: '1', MaxFlows: '65537' }, 'PODSOCK_ERR_CONFIG', `--max-flows: invalid flow limit '65537' (expected an integer from 1 to 65536)`],
  ];
  for (const [body, flags, code, message] of cases) {
    const err = caught(() => resolve(body, flags));
    t.equal(err.code, code, message);
    t.equal(err.message, message);
  }
});

void t.test('FlowTimeout and MaxFlows: documented defaults, values from the file, the flag wins', async (t) => {
  const d = resolve('Mode=proxy\nBackend=1');
  t.equal(d.flowTimeoutMs, 30_000);
  t.equal(d.maxFlows, 1024);
  const s = resolve('Mode=proxy\nBackend=1\nFlowTimeout=2min\nMaxFlows=16');
  t.equal(s.flowTimeoutMs, 120_000);
  t.equal(s.maxFlows, 16);
  t.equal(resolve('Mode=proxy\nBackend=1\nMaxFlows=16', { MaxFlows: '8' }).maxFlows, 8);
});

void t.test('ConnectionIdleTimeout: off by default, a time span, infinity and 0 are off, the flag wins', async (t) => {
  t.equal(resolve('Mode=proxy\nBackend=1').connectionIdleTimeoutMs, null);
  const s = resolve('Mode=proxy\nBackend=1\nConnectionIdleTimeout=2min 30s');
  t.equal(s.connectionIdleTimeoutMs, 150_000);
  t.same(s.keyLines, { Mode: 2, Backend: 3, ConnectionIdleTimeout: 4 });
  t.equal(resolve('Mode=proxy\nBackend=1\nConnectionIdleTimeout=500ms').connectionIdleTimeoutMs, 500);
  t.equal(resolve('Mode=proxy\nBackend=1\nConnectionIdleTimeout=infinity').connectionIdleTimeoutMs, null);
  t.equal(resolve('Mode=proxy\nBackend=1\nConnectionIdleTimeout=0').connectionIdleTimeoutMs, null);
  t.equal(resolve('Mode=proxy\nBackend=1\nConnectionIdleTimeout=1h', { ConnectionIdleTimeout: '10s' }).connectionIdleTimeoutMs, 10_000);
});

void t.test('too many backends', async (t) => {
  const many = Array.from({ length: 65 }, (_, i) => `b${i}=${i + 1}`).join(' ');
  const err = caught(() => resolve(null, { Mode: 'proxy', Backend: many }));
  t.equal(err.message.startsWith('--backend: too many backends (65; at most 64)'), true);
  t.equal(resolve(null, { Mode: 'proxy', Backend: many.split(' ').slice(0, 64).join(' ') }).backends.length, 64);
});
