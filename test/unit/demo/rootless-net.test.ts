import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { findRootlessNetworkHelper } from '../../../src/demo/rootless-net.js';

function exe(path: string): void {
  writeFileSync(path, '#!/bin/sh\n');
  chmodSync(path, 0o755);
}

void t.test('slirp4netns before pasta, helper directories before PATH', async (t) => {
  const dir = t.testdir({ helpers: {}, bin: {}, empty: {} });
  const [helpers, bin, empty] = ['helpers', 'bin', 'empty'].map((d) => join(dir, d)) as [string, string, string];
  t.equal(findRootlessNetworkHelper({ PATH: empty }, []), null, 'neither');
  exe(join(bin, 'pasta'));
  t.equal(findRootlessNetworkHelper({ PATH: `${empty}:${bin}` }, []), join(bin, 'pasta'));
  exe(join(bin, 'slirp4netns'));
  t.equal(findRootlessNetworkHelper({ PATH: bin }, []), join(bin, 'slirp4netns'), 'slirp4netns is preferred');
  exe(join(helpers, 'slirp4netns'));
  t.equal(findRootlessNetworkHelper({ PATH: bin }, [helpers]), join(helpers, 'slirp4netns'), "podman's helper directory first");
  writeFileSync(join(empty, 'slirp4netns'), 'not executable');
  t.equal(findRootlessNetworkHelper({ PATH: empty }, []), null, 'a file that is not executable does not count');
});
