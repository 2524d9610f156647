// Choosing the data path: PODSOCK_PROXY_PIPE (native, poll, js; anything else is an error that says
// what is expected) and the relay engine switch behind it.
import t from 'tap';
import { PodsockError } from '../../../src/errors.js';
import { defaultPipe } from '../../../src/proxy/proxy.js';
import { relayEngine } from '../../../src/native/relay.js';
import { expectedRelayEngine } from './relay-engine.js';

void t.test('PODSOCK_PROXY_PIPE selects the data path; an unknown value is refused by name', async (t) => {
  t.equal(defaultPipe({}), 'native');
  t.equal(defaultPipe({ PODSOCK_PROXY_PIPE: '' }), 'native');
  t.equal(defaultPipe({ PODSOCK_PROXY_PIPE: 'native' }), 'native');
  t.equal(defaultPipe({ PODSOCK_PROXY_PIPE: 'poll' }), 'native', 'poll is the native relay without io_uring');
  t.equal(defaultPipe({ PODSOCK_PROXY_PIPE: 'js' }), 'js');
  for (const bad of ['JS', 'uring', 'native ', 'io_uring']) {
    let err: unknown;
    try {
      defaultPipe({ PODSOCK_PROXY_PIPE: bad });
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof PodsockError, `refuses ${JSON.stringify(bad)}`);
    t.match(err, { code: 'PODSOCK_ERR_USAGE' });
    t.ok((err as Error).message.includes(`PODSOCK_PROXY_PIPE '${bad}'`), (err as Error).message);
    t.match((err as Error).message, /expected one of 'native', 'poll', 'js'/);
  }
});

void t.test('relayEngine: the expected engine, poll on request with the reason, back with auto', async (t) => {
  const want = expectedRelayEngine();
  const first = relayEngine();
  t.equal(first.engine, want, `this machine (reason: ${first.reason ?? 'none'})`);
  t.equal(first.live, 0);
  t.equal(first.waiting, 0);
  const polled = relayEngine('poll');
  t.equal(polled.engine, 'poll');
  t.match(polled.reason, /relayEngine\('poll'\)/);
  t.equal(relayEngine('auto').engine, want, 'auto undoes it');
  t.throws(() => relayEngine('uring' as 'auto'), { code: 'PODSOCK_ERR_NATIVE', message: /expected 'auto' or 'poll'/ });
  t.equal(relayEngine().engine, want, 'a refused mode changes nothing');
});
