import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DEMO_CMD, DEMO_PAGE, demoImageHash, findBusybox, readStaticBusybox } from '../../../src/demo/image.js';
import { isPodsockError } from '../../../src/errors.js';

void t.test('the image hash depends on busybox and nothing else varies it', async (t) => {
  const a = demoImageHash(Buffer.from('busybox one'));
  t.match(a, /^[0-9a-f]{16}$/);
  t.equal(demoImageHash(Buffer.from('busybox one')), a, 'stable');
  t.not(demoImageHash(Buffer.from('busybox two')), a, 'another busybox, another hash');
});

void t.test('the container command traps TERM and serves /www on 8080', async (t) => {
  t.same(DEMO_CMD.slice(0, 3), ['/bin/busybox', 'sh', '-c']);
  t.equal(DEMO_CMD[3], "trap 'exit 0' TERM; /bin/busybox httpd -f -p 8080 -h /www & wait");
  t.equal(DEMO_PAGE, 'hello from a socket-activated container\n');
});

void t.test('findBusybox searches PATH in order', async (t) => {
  const dir = t.testdir({ a: {}, b: {}, c: {} });
  for (const d of ['b', 'c']) {
    writeFileSync(join(dir, d, 'busybox'), '#!/bin/sh\n');
    chmodSync(join(dir, d, 'busybox'), 0o755);
  }
  writeFileSync(join(dir, 'a', 'busybox'), 'not executable');
  t.equal(findBusybox({ PATH: [join(dir, 'a'), join(dir, 'b'), join(dir, 'c')].join(':') }), join(dir, 'b', 'busybox'));
});

void t.test('readStaticBusybox refuses what cannot run alone in an empty image', async (t) => {
  const dir = t.testdir({});
  mkdirSync(join(dir, 'bin'));
  copyFileSync(process.execPath, join(dir, 'bin', 'dynamic'));
  writeFileSync(join(dir, 'bin', 'script'), '#!/bin/sh\n');
  for (const [file, what] of [
    ['dynamic', 'is dynamically linked'],
    ['script', 'is not an ELF executable'],
    ['missing', 'Cannot read busybox'],
  ] as const) {
    try {
      readStaticBusybox(join(dir, 'bin', file));
      t.fail(`${file} was accepted`);
    } catch (err) {
      t.ok(isPodsockError(err, 'PODSOCK_ERR_DEMO_SETUP'), `${file}: PODSOCK_ERR_DEMO_SETUP`);
      t.match((err as Error).message, what);
    }
  }
});
