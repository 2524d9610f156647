import t from 'tap';
import {
  activatedNginxConf,
  containerName,
  nativeRunArgv,
  podsockContainerFile,
  serviceUnit,
  socketUnit,
  type ColdUnitContext,
} from '../../../scripts/bench/cold-units.js';

const ctx: ColdUnitContext = {
  unit: 'bench-x',
  port: 41234,
  image: 'localhost/podsock-bench-nginx:latest',
  nginxConf: '/w/bench-x.nginx.conf',
  podsockConfig: '/w/bench-x.container',
  log: '/w/bench-x.log',
  containersConf: '/w/containers.conf',
  podman: '/usr/bin/podman',
  node: '/usr/bin/node',
  podsockMain: '/repo/dist/cli/main.js',
  launcher: null,
};

void t.test('the nginx configuration listens on exactly the socket unit address', async (t) => {
  const conf = activatedNginxConf(41234);
  t.match(conf, /^ {4}listen 127\.0\.0\.1:41234 default_server;$/m);
  t.equal(conf.match(/listen/g)?.length, 1, 'no second listen that nginx would bind itself');
  t.match(conf, /^ {4}root \/srv\/bench;$/m);
});

void t.test('container names: podsock prefixes its own, the native services use the unit name', async (t) => {
  t.equal(containerName('native-none', 'u'), 'u');
  t.equal(containerName('native-default', 'u'), 'u');
  t.equal(containerName('podsock-handover', 'u'), 'podsock-u');
  t.equal(containerName('podsock-proxy', 'u'), 'podsock-u');
});

void t.test('the socket unit is one loopback listener', async (t) => {
  t.equal(socketUnit(ctx), '[Socket]\nListenStream=127.0.0.1:41234\n');
});

void t.test('native podman runs: --network none only for native-none, same container otherwise', async (t) => {
  const tail = ['-e', 'NGINX=3;', '-v', '/w/bench-x.nginx.conf:/etc/nginx/bench-activated.conf:ro', ctx.image, 'nginx', '-c', '/etc/nginx/bench-activated.conf', '-g', 'daemon off;'];
  t.same(nativeRunArgv('native-none', ctx), ['/usr/bin/podman', 'run', '--rm', '--replace', '--name', 'bench-x', '--network', 'none', ...tail]);
  t.same(nativeRunArgv('native-default', ctx), ['/usr/bin/podman', 'run', '--rm', '--replace', '--name', 'bench-x', ...tail]);
});

void t.test('the native service runs podman directly and removes its container after a stop', async (t) => {
  t.equal(
    serviceUnit('native-none', ctx),
    [
      '[Unit]',
      'Requires=bench-x.socket',
      'After=bench-x.socket',
      '',
      '[Service]',
      'Type=simple',
      'Environment=CONTAINERS_CONF=/w/containers.conf',
      'ExecStart=/usr/bin/podman run --rm --replace --name bench-x --network none -e "NGINX=3;" -v /w/bench-x.nginx.conf:/etc/nginx/bench-activated.conf:ro localhost/podsock-bench-nginx:latest nginx -c /etc/nginx/bench-activated.conf -g "daemon off;"',
      'StandardOutput=append:/w/bench-x.log',
      'StandardError=append:/w/bench-x.log',
      'TimeoutStartSec=120s',
      'TimeoutStopSec=40s',
      'ExecStopPost=-/usr/bin/podman stop --ignore bench-x',
      'ExecStopPost=-/usr/bin/podman rm --force --ignore bench-x',
      '',
    ].join('\n'),
  );
});

void t.test('the podsock service follows units/podsock@.service and names its .container file', async (t) => {
  t.equal(
    serviceUnit('podsock-proxy', { ...ctx, containersConf: null }),
    [
      '[Unit]',
      'Requires=bench-x.socket',
      'After=bench-x.socket',
      '',
      '[Service]',
      'Type=notify',
      'NotifyAccess=main',
      'KillMode=mixed',
      'RuntimeDirectory=bench-x',
      'RuntimeDirectoryMode=0700',
      'ExecStart=/usr/bin/node /repo/dist/cli/main.js run bench-x --config /w/bench-x.container',
      'StandardOutput=append:/w/bench-x.log',
      'StandardError=append:/w/bench-x.log',
      'TimeoutStartSec=120s',
      'TimeoutStopSec=40s',
      'ExecStopPost=-/usr/bin/podman stop --ignore podsock-bench-x',
      'ExecStopPost=-/usr/bin/podman rm --force --ignore podsock-bench-x',
      '',
    ].join('\n'),
  );
});

void t.test('with podsock-launch, ExecStart= runs node and podsock through it, as generated units do', async (t) => {
  const unit = serviceUnit('podsock-handover', { ...ctx, launcher: '/repo/build/Release/podsock-launch' });
  t.match(unit, /^ExecStart=\/repo\/build\/Release\/podsock-launch \/usr\/bin\/node \/repo\/dist\/cli\/main\.js run bench-x --config \/w\/bench-x\.container$/m);
});

void t.test('with the installed command, ExecStart= is the plain podsock run line', async (t) => {
  const unit = serviceUnit('podsock-proxy', { ...ctx, launcher: '/repo/build/Release/podsock-launch', command: '/repo/dist/bin/podsock' });
  t.match(unit, /^ExecStart=\/repo\/dist\/bin\/podsock run bench-x --config \/w\/bench-x\.container$/m);
});

void t.test('podsock .container files: handover mirrors native-none, proxy uses the stock image', async (t) => {
  t.equal(
    podsockContainerFile('podsock-handover', ctx),
    [
      '[Container]',
      'Image=localhost/podsock-bench-nginx:latest',
      'Pull=never',
      'Network=none',
      'Environment="NGINX=3;"',
      'Volume=/w/bench-x.nginx.conf:/etc/nginx/bench-activated.conf:ro',
      'Exec=nginx -c /etc/nginx/bench-activated.conf -g "daemon off;"',
      '',
      '[Podsock]',
      'Mode=handover',
      'Ready=started',
      'IdleTimeout=infinity',
      '',
    ].join('\n'),
  );
  t.equal(
    podsockContainerFile('podsock-proxy', ctx),
    ['[Container]', 'Image=localhost/podsock-bench-nginx:latest', 'Pull=never', '', '[Podsock]', 'Mode=proxy', 'Backend=8080', 'Ready=tcp', 'IdleTimeout=infinity', ''].join('\n'),
  );
});
