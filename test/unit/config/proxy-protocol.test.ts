import t from 'tap';
import { resolvePodsockSettings, type PodsockKey, type PodsockSettings } from '../../../src/config/podsock-section.js';
import { parseUnitText } from '../../../src/config/unit-syntax.js';
import { PODSOCK_KEY_DESCRIPTORS } from '../../../src/config/podsock-keys.js';
import { proxyProtocolFor } from '../../../src/proxy/socket-backends.js';
import { caught } from '../../helpers/caught.js';

const FILE = '/etc/podsock/web.container';

/** [Podsock] body starts at line 2. */
function resolve(body: string | null, flags: Partial<Record<PodsockKey, string>> = {}): PodsockSettings {
  if (body === null) return resolvePodsockSettings(undefined, null, flags);
  const unit = parseUnitText(`[Podsock]\n${body}\n`, FILE);
  return resolvePodsockSettings(unit.sections[0], FILE, flags);
}

void t.test('ProxyProtocol: off by default, one version for every socket, or per socket name; the flag wins', async (t) => {
  t.same(resolve('Mode=proxy\nBackend=80').proxyProtocol, []);
  t.same(resolve('Mode=proxy\nBackend=80\nProxyProtocol=v2').proxyProtocol, [{ name: null, version: 'v2' }]);
  t.same(resolve('Mode=proxy\nBackend=web=80 api=81\nProxyProtocol=web=v1 api=off').proxyProtocol, [
    { name: 'web', version: 'v1' },
    { name: 'api', version: 'off' },
  ]);
  t.same(resolve('Mode=proxy\nBackend=80\nProxyProtocol=v1', { ProxyProtocol: 'off' }).proxyProtocol, [{ name: null, version: 'off' }]);
  t.same(resolve(null, { Mode: 'proxy', Backend: '80', ProxyProtocol: 'v2' }).proxyProtocol, [{ name: null, version: 'v2' }]);
  t.same(resolve('Mode=proxy\nBackend=80\nProxyProtocol=v2').keyLines, { Mode: 2, Backend: 3, ProxyProtocol: 4 });
});

void t.test('ProxyProtocol: errors name the key, the value and what was expected', async (t) => {
  const expected = "expected one of 'off', 'v1', 'v2', or NAME=VERSION pairs such as 'web=v2 api=off', NAME being a socket's FileDescriptorName=";
  const cases: Array<[string | null, Partial<Record<PodsockKey, string>>, string]> = [
    ['Mode=proxy\nBackend=80\nProxyProtocol=v3', {}, `${FILE}:4: ProxyProtocol: invalid PROXY protocol version 'v3' in 'v3' (allowed: 'off', 'v1', 'v2')`],
    ['Mode=proxy\nBackend=80\nProxyProtocol=on', {}, `${FILE}:4: ProxyProtocol: invalid PROXY protocol version 'on' in 'on' (allowed: 'off', 'v1', 'v2')`],
    [null, { Mode: 'proxy', Backend: '80', ProxyProtocol: 'web=2' }, `--proxy-protocol: invalid PROXY protocol version '2' in 'web=2' (allowed: 'off', 'v1', 'v2')`],
    ['Mode=proxy\nBackend=80\nProxyProtocol=v2 web=v1', {}, `${FILE}:4: ProxyProtocol: invalid setting 'v2' in 'v2 web=v1' (${expected})`],
    ['Mode=proxy\nBackend=80\nProxyProtocol==v1', {}, `${FILE}:4: ProxyProtocol: invalid setting '=v1' in '=v1' (${expected})`],
    ['Mode=proxy\nBackend=80\nProxyProtocol=a:b=v1', {}, `${FILE}:4: ProxyProtocol: invalid setting 'a:b=v1' in 'a:b=v1' (${expected})`],
    ['Mode=proxy\nBackend=80\nProxyProtocol=web=v1 web=v2', {}, `${FILE}:4: ProxyProtocol: socket 'web' is given twice in 'web=v1 web=v2'`],
    ['Mode=proxy\nBackend=web=80 api=81\nProxyProtocol=wbe=v2', {}, `${FILE}:4: ProxyProtocol: socket 'wbe' has no backend: Backend= names 'web', 'api'`],
    [
      'ProxyProtocol=v2',
      {},
      `${FILE}:2: ProxyProtocol: the PROXY protocol header goes from podsock to the backend, which only proxy mode has (in handover mode the container accepts the clients itself and sees their addresses), but the mode is 'handover' (the default)`,
    ],
    [
      'Mode=handover',
      { ProxyProtocol: 'v1' },
      `--proxy-protocol: the PROXY protocol header goes from podsock to the backend, which only proxy mode has (in handover mode the container accepts the clients itself and sees their addresses), but the mode is 'handover' (set by ${FILE}:2: Mode)`,
    ],
  ];
  for (const [body, flags, message] of cases) {
    const err = caught(() => resolve(body, flags));
    t.equal(err.code, 'PODSOCK_ERR_CONFIG', message);
    t.equal(err.message, message);
  }
  t.match(caught(() => resolve(null, { Mode: 'proxy', Backend: '80', ProxyProtocol: ' ' })).message, /--proxy-protocol: empty value \(expected one of 'off', 'v1', 'v2'/);
  // A name with a default backend may be any socket's: not checked against Backend=.
  t.same(resolve('Mode=proxy\nBackend=80\nProxyProtocol=dns=v2').proxyProtocol, [{ name: 'dns', version: 'v2' }]);
});

void t.test('proxyProtocolFor: the socket by name, else the version for every socket, else off', async (t) => {
  const cfg = resolve('Mode=proxy\nBackend=web=80 api=81 admin=82\nProxyProtocol=web=v1 api=v2');
  t.equal(proxyProtocolFor(cfg, 'web'), 'v1');
  t.equal(proxyProtocolFor(cfg, 'api'), 'v2');
  t.equal(proxyProtocolFor(cfg, 'admin'), 'off');
  t.equal(proxyProtocolFor({ proxyProtocol: [{ name: null, version: 'v2' }, { name: 'b', version: 'off' }] }, 'a'), 'v2');
  t.equal(proxyProtocolFor({ proxyProtocol: [{ name: null, version: 'v2' }, { name: 'b', version: 'off' }] }, 'b'), 'off');
  t.equal(proxyProtocolFor({ proxyProtocol: [] }, 'a'), 'off');
});

void t.test("a generated file's ProxyProtocol= line", async (t) => {
  const d = PODSOCK_KEY_DESCRIPTORS.find((x) => x.key === 'ProxyProtocol');
  const v = resolve('Mode=proxy\nBackend=web=80 api=81\nProxyProtocol=web=v2 api=off');
  t.same(d?.file(v)?.value, 'web=v2 api=off');
  t.equal(d?.file(resolve('Mode=proxy\nBackend=80')), null, 'off is left out');
  t.equal(d?.file(resolve('Mode=proxy\nBackend=80\nProxyProtocol=off')), null, 'off is left out');
  t.same(d?.file(resolve('Mode=proxy\nBackend=80\nProxyProtocol=v1'))?.value, 'v1');
});
