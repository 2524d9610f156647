import http from 'node:http';
import type net from 'node:net';
import t, { type Test } from 'tap';
import { requestStatus, waitHttpReady } from '../../../src/readiness/http.js';
import { runUntilItExits } from '../../helpers/exits-by-itself.js';
import { pendingAfter } from '../../helpers/pending-after.js';
import { latePort } from '../late-port.js';

interface Seen {
  method: string | undefined;
  url: string | undefined;
  httpVersion: string;
  host: string | undefined;
  connection: string | undefined;
}

/** An HTTP server on 127.0.0.1 whose answer (status per path, or no answer) can be switched. */
async function server(
  t: Test,
  answer: (path: string, n: number) => number | 'hang',
  port = 0,
): Promise<{ port: number; requests: Seen[]; setAnswer: (a: typeof answer) => void }> {
  const requests: Seen[] = [];
  let current = answer;
  const srv = http.createServer((req, res) => {
    requests.push({
      method: req.method,
      url: req.url,
      httpVersion: req.httpVersion,
      host: req.headers.host,
      connection: req.headers.connection,
    });
    const status = current(req.url ?? '', requests.length);
    if (status === 'hang') return;
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(`status ${status}\n`);
  });
  t.teardown(() => {
    srv.closeAllConnections();
    srv.close();
  });
  await new Promise<void>((resolve) => srv.listen(port, '127.0.0.1', resolve));
  return { port: (srv.address() as net.AddressInfo).port, requests, setAnswer: (a) => (current = a) };
}

void t.test('resolves once a server starts listening late', async (t) => {
  const port = await latePort();
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  const start = Date.now();
  const ready = waitHttpReady({ host: '127.0.0.1', port, path: '/healthz', signal: ac.signal });
  await new Promise((resolve) => setTimeout(resolve, 500));
  const srv = await server(t, () => 200, port);
  await ready;
  t.ok(Date.now() - start >= 500, 'not before the server listened');
  t.same(srv.requests, [{ method: 'GET', url: '/healthz', httpVersion: '1.1', host: 'localhost', connection: 'close' }]);
});

void t.test('503 is retried until 200', async (t) => {
  const srv = await server(t, (_path, n) => (n <= 2 ? 503 : 200));
  await waitHttpReady({ host: '127.0.0.1', port: srv.port, path: '/ready?full=1', signal: new AbortController().signal });
  t.equal(srv.requests.length, 3, 'two 503s, then the 200');
  t.ok(srv.requests.every((r) => r.url === '/ready?full=1'));
});

void t.test('3xx counts as ready, 4xx and 5xx do not', async (t) => {
  const ac = new AbortController();
  for (const [status, ready] of [[200, true], [204, true], [302, true], [399, true], [404, false], [500, false]] as const) {
    const srv = await server(t, () => status);
    const got = await requestStatus({ host: '127.0.0.1', port: srv.port, path: '/', signal: ac.signal, requestTimeoutMs: 5000 });
    t.equal(got, status);
    if (ready) await waitHttpReady({ host: '127.0.0.1', port: srv.port, path: '/', signal: ac.signal });
    else t.ok(await pendingAfter(waitHttpReady({ host: '127.0.0.1', port: srv.port, path: '/', signal: ac.signal }), 300), `${status} is not ready`);
  }
  ac.abort();
});

void t.test('200 on another path only is not ready', async (t) => {
  const srv = await server(t, (path) => (path === '/other' ? 200 : 404));
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  const ready = waitHttpReady({ host: '127.0.0.1', port: srv.port, path: '/healthz', signal: ac.signal });
  t.ok(await pendingAfter(ready, 1000), 'still waiting');
  t.ok(srv.requests.length >= 3, `retried (${srv.requests.length} requests)`);
  t.ok(srv.requests.every((r) => r.url === '/healthz'), 'only the configured path was asked');
  srv.setAnswer(() => 200);
  await ready;
});

void t.test('a request without an answer times out and is retried', async (t) => {
  const srv = await server(t, (_path, n) => (n === 1 ? 'hang' : 200));
  const start = Date.now();
  await waitHttpReady({ host: '127.0.0.1', port: srv.port, path: '/', signal: new AbortController().signal, requestTimeoutMs: 300 });
  t.equal(srv.requests.length, 2);
  t.ok(Date.now() - start >= 290, 'waited for the timeout');
});

void t.test('an invalid path is a configuration error, not a retry loop', async (t) => {
  for (const path of ['healthz', '/a b', '/x#frag', '', '/\n']) {
    await t.rejects(
      waitHttpReady({ host: '127.0.0.1', port: 1, path, signal: new AbortController().signal }),
      // Control characters are shown escaped in messages (errors.ts q()).
      { code: 'PODSOCK_ERR_CONFIG', message: `Invalid HTTP readiness path '${path.replace('\n', '\\n')}': expected an absolute path such as '/healthz' without spaces or '#'` },
    );
  }
});

void t.test('abort rejects with the reason promptly, even during a hung request', async (t) => {
  const srv = await server(t, () => 'hang');
  const reason = new Error('deadline');
  const ac = new AbortController();
  const ready = waitHttpReady({ host: '127.0.0.1', port: srv.port, path: '/', signal: ac.signal, requestTimeoutMs: 60_000 });
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.equal(srv.requests.length, 1, 'the request is hanging');
  const start = Date.now();
  ac.abort(reason);
  await t.rejects(ready, reason);
  t.ok(Date.now() - start < 2000, 'promptly');
});

// The child must exit by itself after the aborts; a socket or timer left behind would keep it alive.
void t.test('abort leaves no socket or timer behind', async (t) => {
  const hanging = await server(t, () => 'hang');
  const failing = await server(t, () => 503);
  const code = `
    const { waitHttpReady } = await import(${JSON.stringify(new URL('../../../src/readiness/http.ts', import.meta.url).href)});
    const run = async (port, abortAfterMs) => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('stop')), abortAfterMs);
      return waitHttpReady({ host: '127.0.0.1', port, path: '/', signal: ac.signal, requestTimeoutMs: 60000,
        backoff: { initialMs: 60000, maxMs: 60000 } }).then(() => 'resolved', (e) => e.message);
    };
    // during a request that gets no answer; in the backoff sleep after a 503
    console.log(await run(${hanging.port}, 300), await run(${failing.port}, 300));
  `;
  const { out, exitCode } = await runUntilItExits(t, code);
  t.equal(out, 'stop stop\n');
  t.equal(exitCode, 0);
  t.equal(hanging.requests.length, 1);
  t.equal(failing.requests.length, 1);
});
