import t from 'tap';
import { PodsockError } from '../../../src/errors.js';
import { checkSockets } from '../../../src/listeners/check-sockets.js';
import type { ListenFd } from '../../../src/sd/listen-fds.js';

const tcp: ListenFd = { fd: 3, name: 'web', family: 'inet', type: 'stream', listening: true, host: '127.0.0.1', port: 8080 };
const dgram: ListenFd = { fd: 4, name: 'dns', family: 'inet', type: 'dgram', listening: false, host: '127.0.0.1', port: 53 };

function code(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof PodsockError) return err.code;
    throw err;
  }
  return 'none';
}

void t.test('handover mode takes listening and datagram sockets, not connections', async (t) => {
  t.equal(code(() => checkSockets({ mode: 'handover', backends: [] }, [tcp, dgram])), 'none');
  t.equal(code(() => checkSockets({ mode: 'handover', backends: [] }, [{ ...tcp, listening: false }])), 'PODSOCK_ERR_BAD_SOCKET', 'Accept=yes');
});

void t.test('proxy mode needs listening stream sockets or UDP sockets, and a backend for each named one', async (t) => {
  t.equal(code(() => checkSockets({ mode: 'proxy', backends: [{ name: null, port: 80 }] }, [tcp])), 'none');
  t.equal(code(() => checkSockets({ mode: 'proxy', backends: [{ name: null, port: 80 }] }, [dgram])), 'none', 'UDP is served as flows');
  t.equal(code(() => checkSockets({ mode: 'proxy', backends: [{ name: null, port: 80 }] }, [{ ...dgram, family: 'inet6', host: '::' }])), 'none');
  t.equal(
    code(() => checkSockets({ mode: 'proxy', backends: [{ name: null, port: 80 }] }, [{ fd: 5, name: 'log', family: 'unix', type: 'dgram', listening: false, path: '/run/log.sock' }])),
    'PODSOCK_ERR_BAD_SOCKET',
    'a unix datagram socket has no flows to proxy',
  );
  t.equal(code(() => checkSockets({ mode: 'proxy', backends: [{ name: 'dns', port: 53 }] }, [dgram])), 'none');
  t.equal(code(() => checkSockets({ mode: 'proxy', backends: [{ name: 'web', port: 53 }] }, [dgram])), 'PODSOCK_ERR_CONFIG');
  t.equal(code(() => checkSockets({ mode: 'proxy', backends: [{ name: 'web', port: 80 }] }, [tcp])), 'none');
  t.equal(code(() => checkSockets({ mode: 'proxy', backends: [{ name: 'admin', port: 80 }] }, [tcp])), 'PODSOCK_ERR_CONFIG');
});

void t.test('a TCP readiness probe needs a stream socket to probe for', async (t) => {
  const backends = [{ name: null, port: 53 }];
  t.equal(code(() => checkSockets({ mode: 'proxy', backends, ready: { kind: 'tcp' } }, [dgram])), 'PODSOCK_ERR_CONFIG', 'Ready=tcp, UDP only');
  t.equal(code(() => checkSockets({ mode: 'proxy', backends, ready: { kind: 'http', path: '/' } }, [dgram])), 'PODSOCK_ERR_CONFIG', 'Ready=http, UDP only');
  t.equal(code(() => checkSockets({ mode: 'proxy', backends, ready: { kind: 'tcp' } }, [tcp, dgram])), 'none', 'a stream socket beside it');
  t.equal(code(() => checkSockets({ mode: 'proxy', backends, ready: { kind: 'started' } }, [dgram])), 'none');
  t.equal(code(() => checkSockets({ mode: 'proxy', backends, ready: { kind: 'notify' } }, [dgram])), 'none');
});

void t.test('ProxyProtocol=v1 has no datagram form: a UDP socket needs v2 or off', async (t) => {
  const backends = [{ name: null, port: 53 }];
  t.equal(code(() => checkSockets({ mode: 'proxy', backends, proxyProtocol: [{ name: null, version: 'v1' }] }, [dgram])), 'PODSOCK_ERR_CONFIG');
  t.equal(code(() => checkSockets({ mode: 'proxy', backends, proxyProtocol: [{ name: null, version: 'v1' }] }, [tcp])), 'none', 'v1 is fine for TCP');
  t.equal(code(() => checkSockets({ mode: 'proxy', backends, proxyProtocol: [{ name: null, version: 'v1' }, { name: 'dns', version: 'v2' }] }, [tcp, dgram])), 'none', 'per socket');
  t.equal(code(() => checkSockets({ mode: 'proxy', backends, proxyProtocol: [{ name: null, version: 'v2' }] }, [dgram])), 'none');
});
