// A client that connects and closes while its connection is held (before the container is ready)
// must still end: its EOF reaches the backend once targets are set, and the proxy goes idle.
import net from 'node:net';
import t from 'tap';
import { Proxy } from '../../../src/proxy/proxy.js';
import { closeFd, inspectFd, listenSocket } from '../../../src/native/fds.js';

void t.test('EOF of a client that left while held reaches the backend; the connection finishes', async (t) => {
  const fd = listenSocket({ kind: 'tcp', host: '127.0.0.1', port: 0, backlog: 16 });
  t.teardown(() => closeFd(fd));
  const port = inspectFd(fd).port as number;
  let backendEnds = 0;
  const backend = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    s.on('end', () => {
      backendEnds++;
      s.end();
    });
    s.resume();
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  t.teardown(() => backend.close());
  const proxy = new Proxy({ listeners: [{ name: 'x', fd }], maxConnections: 4, maxPending: 4 });
  t.teardown(() => proxy.destroy());
  await proxy.start();
  await new Promise<void>((r) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.end();
      r();
    });
  });
  await new Promise<void>((r) => proxy.once('active', r).activeCount > 0 ? r() : undefined);
  await new Promise((r) => setTimeout(r, 200)); // the client's FIN arrives while the connection is held
  t.equal(proxy.activeCount, 1, 'held');
  const idle = new Promise<void>((r) => proxy.once('idle', r));
  const bport = (backend.address() as net.AddressInfo).port;
  proxy.setTargets(() => ({ host: '127.0.0.1', port: bport }));
  await idle;
  t.equal(proxy.activeCount, 0, 'the connection finished');
  t.equal(backendEnds, 1, 'the backend saw the EOF');
});
