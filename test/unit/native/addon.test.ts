// The addon core (src/native/addon.ts): the loaded addon has this code's interface version, and a
// stale build is refused at load with both versions and how to rebuild.
import t from 'tap';
import { isPodsockError } from '../../../src/errors.js';
import { ABI_VERSION, addonAvailable, binding, checkAbiVersion, nativeErrno } from '../../../src/native/addon.js';
import { closeFd } from '../../../src/native/fds.js';

void t.test('the addon built from this tree has the interface version this code expects', async (t) => {
  t.equal(addonAvailable(), true);
  t.equal(binding<{ abiVersion: unknown }>().abiVersion, ABI_VERSION);
  t.doesNotThrow(() => checkAbiVersion(ABI_VERSION));
});

void t.test('another interface version, or none, is refused naming both and how to rebuild', async (t) => {
  for (const [found, says] of [
    [ABI_VERSION + 1, `interface version ${ABI_VERSION + 1}, this podsock needs version ${ABI_VERSION}`],
    [undefined, `interface no version (built before versions existed), this podsock needs version ${ABI_VERSION}`],
  ] as const) {
    try {
      checkAbiVersion(found);
      t.fail(`accepted ${String(found)}`);
    } catch (err) {
      t.ok(isPodsockError(err, 'PODSOCK_ERR_NATIVE'), 'PODSOCK_ERR_NATIVE');
      t.match((err as Error).message, says);
      t.match((err as Error).message, /'npm rebuild podsock' or 'npx node-gyp rebuild'/);
    }
  }
});

void t.test('nativeErrno: the errno name of an addon failure, undefined for anything else', async (t) => {
  let caught: unknown;
  try {
    closeFd(0x7ffffff0);
  } catch (err) {
    caught = err;
  }
  t.equal(nativeErrno(caught), 'EBADF');
  t.equal(nativeErrno(new Error('x')), undefined);
});
