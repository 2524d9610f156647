// The Proxy tests again with the native data path (native-path.ts) on the relay's poll engine (recv/send
// woken by Node's epoll), what relays use where io_uring is missing or forbidden, and what
// PODSOCK_PROXY_PIPE=poll selects.
import { relayEngine } from '../../../src/native/relay.js';

relayEngine('poll');
await import('./proxy.test.js');
