import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { activatedNginxConf } from '../../../scripts/bench/cold-units.js';
import { repoRoot } from '../../../scripts/bench/host.js';
import { benchNginxConf } from '../../../scripts/bench/nginx-image.js';

const bench = join(repoRoot, 'scripts', 'bench');
const imageConf = readFileSync(join(bench, 'nginx-bench.conf'), 'utf8');

void t.test('the image and the activated variants run one nginx configuration, but for the listen address', async (t) => {
  const image = imageConf.split('\n');
  const activated = activatedNginxConf(41234).split('\n');
  t.equal(activated.length, image.length, 'as many lines');
  const differ = image.flatMap((line, i) => (line === activated[i] ? [] : [`${line.trim()} -> ${(activated[i] ?? '').trim()}`]));
  t.same(differ, ['listen 8080 default_server; -> listen 127.0.0.1:41234 default_server;']);
  t.equal(benchNginxConf('8080'), imageConf, "the image's own address gives the file back");
});

void t.test('build-nginx-image.sh installs nginx-bench.conf as nginx.conf and rebuilds when it changes', async (t) => {
  const script = readFileSync(join(bench, 'build-nginx-image.sh'), 'utf8');
  t.match(script, /^conf="\$repo\/scripts\/bench\/nginx-bench\.conf"$/m);
  t.match(script, /^hash=\$\(cat "\$\{BASH_SOURCE\[0\]\}" "\$conf" \| sha256sum/m, 'the image label hashes the configuration too');
  t.match(script, /^cp "\$conf" "\$rootfs\/etc\/nginx\/nginx\.conf"$/m);
  t.notMatch(script, /listen 8080/, 'no second copy of the configuration in the script');
});
