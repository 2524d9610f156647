// The Proxy tests again with the JS data path (js-path.ts: net.Server, net.connect, pipe.ts), the
// fallback that PODSOCK_PROXY_PIPE=js selects: both paths must behave the same.
process.env.PODSOCK_TEST_PROXY_PIPE = 'js';
await import('./proxy.test.js');
