import t from 'tap';
import {
  containerService,
  layout,
  memoryFiles,
  podsockCommand,
  podsockContainerFile,
  podsockService,
  proxydService,
  socketUnit,
  type MemoryUnitContext,
} from '../../../scripts/bench/memory-units.js';

const ctx: MemoryUnitContext = {
  unit: 'psmem-x',
  port: 41001,
  appPort: 41002,
  image: 'localhost/podsock-bench-nginx:latest',
  nginxConf: '/w/psmem-x.nginx.conf',
  configDir: '/w/config',
  log: '/w/psmem-x.log',
  containersConf: '/w/containers.conf',
  podman: '/usr/bin/podman',
  podsock: ['/repo/dist/bin/podsock', 'run', 'psmem-x'],
};

void t.test('podsockCommand: the installed command when it is executable, else podsock-launch with node', async (t) => {
  const seen: string[] = [];
  t.same(
    podsockCommand('web', '/repo', '/usr/bin/node', (p) => (seen.push(p), true)),
    ['/repo/dist/bin/podsock', 'run', 'web'],
  );
  t.same(seen, ['/repo/dist/bin/podsock'], 'asks about the installed command only');
  t.same(podsockCommand('web', '/repo', '/usr/bin/node', () => false), ['/repo/build/Release/podsock-launch', '/usr/bin/node', '/repo/dist/bin/podsock.cjs', 'run', 'web']);
  t.same(podsockCommand('web', '/nonexistent-repo', '/usr/bin/node')[0], '/nonexistent-repo/build/Release/podsock-launch', 'the default check looks at the file system');
});

void t.test('layout: what each variant starts, measures and removes', async (t) => {
  const c = { unit: 'u', port: 1, appPort: 2 };
  t.same(layout('podsock-handover', c, '/run/user/0'), {
    variant: 'podsock-handover',
    unit: 'u',
    start: ['u.socket'],
    backendPort: null,
    port: 1,
    services: ['u.service'],
    containers: ['podsock-u'],
    units: ['u.socket', 'u.service'],
    leftovers: [],
  });
  t.match(layout('podsock-proxy', c, '/r'), { start: ['u.socket'], services: ['u.service'], containers: ['podsock-u'] });
  t.same(layout('quadlet', c, '/run/user/0'), {
    variant: 'quadlet',
    unit: 'u',
    start: ['u.service'],
    backendPort: null,
    port: 1,
    services: ['u.service'],
    containers: ['u'],
    units: ['u.service'],
    leftovers: ['/run/user/0/u.cid'],
  });
  t.same(layout('proxyd', c, '/run/user/0'), {
    variant: 'proxyd',
    unit: 'u',
    start: ['u-app.service', 'u.socket'],
    backendPort: 2,
    port: 1,
    services: ['u.service', 'u-app.service'],
    containers: ['u-app'],
    units: ['u.socket', 'u.service', 'u-app.service'],
    leftovers: ['/run/user/0/u-app.cid'],
  });
});

void t.test('the socket unit is one loopback listener', async (t) => {
  t.equal(socketUnit(41001), '[Socket]\nListenStream=127.0.0.1:41001\n');
});

void t.test('podsock service: units/podsock@.service with the configuration directory and PODMAN_SYSTEMD_UNIT', async (t) => {
  t.equal(
    podsockService(ctx),
    [
      '[Unit]',
      'Requires=psmem-x.socket',
      'After=psmem-x.socket',
      '',
      '[Service]',
      'Type=notify',
      'NotifyAccess=main',
      'KillMode=mixed',
      'RuntimeDirectory=podsock-psmem-x',
      'RuntimeDirectoryMode=0700',
      'Environment=PODMAN_SYSTEMD_UNIT=%n',
      'Environment=CONTAINERS_CONF=/w/containers.conf',
      'Environment=PODSOCK_CONFIG_DIR=/w/config',
      'ExecStart=/repo/dist/bin/podsock run psmem-x',
      'StandardOutput=append:/w/psmem-x.log',
      'StandardError=append:/w/psmem-x.log',
      'TimeoutStartSec=120s',
      'TimeoutStopSec=40s',
      'ExecStopPost=-/usr/bin/podman stop --ignore podsock-psmem-x',
      'ExecStopPost=-/usr/bin/podman rm --force --ignore podsock-psmem-x',
      '',
    ].join('\n'),
  );
  const noConf = podsockService({ ...ctx, containersConf: null, podsock: ['/r/podsock-launch', '/usr/bin/node', '/r/podsock.cjs', 'run', 'psmem-x'] });
  t.notMatch(noConf, /CONTAINERS_CONF/);
  t.match(noConf, /^ExecStart=\/r\/podsock-launch \/usr\/bin\/node \/r\/podsock\.cjs run psmem-x$/m);
});

void t.test('podsock .container files: handover without a network, proxy on 8080, both with a long idle timeout', async (t) => {
  t.equal(
    podsockContainerFile('podsock-handover', ctx),
    [
      '[Container]',
      'Image=localhost/podsock-bench-nginx:latest',
      'Pull=never',
      'Network=none',
      'Environment="NGINX=3;"',
      'Volume=/w/psmem-x.nginx.conf:/etc/nginx/bench-activated.conf:ro',
      'Exec=nginx -c /etc/nginx/bench-activated.conf -g "daemon off;"',
      '',
      '[Podsock]',
      'Mode=handover',
      'Ready=started',
      'IdleTimeout=1h',
      '',
    ].join('\n'),
  );
  t.equal(
    podsockContainerFile('podsock-proxy', ctx),
    ['[Container]', 'Image=localhost/podsock-bench-nginx:latest', 'Pull=never', '', '[Podsock]', 'Mode=proxy', 'Backend=8080', 'Ready=tcp', 'IdleTimeout=1h', ''].join('\n'),
  );
});

void t.test('the container service is what Quadlet writes: podman run -d, cidfile in %t, conmon as MAINPID', async (t) => {
  t.equal(
    containerService('psmem-x', 41001, ctx),
    [
      '[Unit]',
      'Description=quadlet-style container psmem-x',
      '',
      '[Service]',
      'Type=notify',
      'NotifyAccess=all',
      'KillMode=mixed',
      'Environment=PODMAN_SYSTEMD_UNIT=%n',
      'Environment=CONTAINERS_CONF=/w/containers.conf',
      'ExecStart=/usr/bin/podman run -d --rm --replace --name psmem-x --cidfile=%t/%N.cid --sdnotify=conmon --log-driver=passthrough -p 127.0.0.1:41001:8080 localhost/podsock-bench-nginx:latest',
      'ExecStop=/usr/bin/podman rm -v -f -i --cidfile=%t/%N.cid',
      'ExecStopPost=-/usr/bin/podman rm -v -f -i --cidfile=%t/%N.cid',
      'StandardOutput=append:/w/psmem-x.log',
      'StandardError=append:/w/psmem-x.log',
      'TimeoutStartSec=120s',
      'TimeoutStopSec=40s',
      '',
    ].join('\n'),
  );
});

void t.test('proxyd runs after and with its container service and forwards to its published port', async (t) => {
  t.equal(
    proxydService(ctx),
    [
      '[Unit]',
      'Requires=psmem-x.socket psmem-x-app.service',
      'After=psmem-x.socket psmem-x-app.service',
      '',
      '[Service]',
      'ExecStart=/lib/systemd/systemd-socket-proxyd 127.0.0.1:41002',
      'StandardOutput=append:/w/psmem-x.log',
      'StandardError=append:/w/psmem-x.log',
      'TimeoutStartSec=120s',
      'TimeoutStopSec=40s',
      '',
    ].join('\n'),
  );
});

void t.test('memoryFiles: every file of each variant, and where it goes', async (t) => {
  const names = (v: Parameters<typeof memoryFiles>[0]): string[] => memoryFiles(v, ctx).map((f) => `${f.dir}:${f.name}`);
  t.same(names('podsock-handover'), ['config:psmem-x.container', 'unit:psmem-x.socket', 'unit:psmem-x.service']);
  t.same(names('podsock-proxy'), ['config:psmem-x.container', 'unit:psmem-x.socket', 'unit:psmem-x.service']);
  t.same(names('quadlet'), ['unit:psmem-x.service']);
  t.same(names('proxyd'), ['unit:psmem-x-app.service', 'unit:psmem-x.socket', 'unit:psmem-x.service']);
  const proxyd = memoryFiles('proxyd', ctx);
  t.match(proxyd[0]?.text, /-p 127\.0\.0\.1:41002:8080/, 'the container publishes the port proxyd forwards to');
  t.match(proxyd[1]?.text, /ListenStream=127\.0\.0\.1:41001/);
  t.match(memoryFiles('quadlet', ctx)[0]?.text, /-p 127\.0\.0\.1:41001:8080/, 'quadlet publishes the port requests go to');
  t.match(memoryFiles('podsock-proxy', ctx)[0]?.text, /Mode=proxy/);
});
