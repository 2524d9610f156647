// The addon says which interface it was built with (native/internal.h PODSOCK_ABI_VERSION), so that the
// TypeScript side can refuse a build/ left over from another version of the package at load.
import t from 'tap';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ADDON = resolve(fileURLToPath(import.meta.url), '../../../../build/Release/podsock_native.node');

void t.test('the addon exports abiVersion, a positive integer, beside its functions', async (t) => {
  const addon = createRequire(import.meta.url)(ADDON) as Record<string, unknown>;
  const version = addon.abiVersion;
  t.ok(Number.isInteger(version) && (version as number) >= 1, `abiVersion is a positive integer (${String(version)})`);
  for (const name of ['dupFd', 'listenTcp', 'dgramOpen', 'relayConnect', 'relayEngine', 'acceptStart', 'spawnProcess', 'udpProxyOpen', 'lockFile']) {
    t.equal(typeof addon[name], 'function', `${name} is registered by its file`);
  }
});
