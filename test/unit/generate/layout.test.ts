import t from 'tap';
import { layoutFor, nextSteps, podsockCommand } from '../../../src/generate/layout.js';

void t.test('podsockCommand: podsock from PATH only when it is this podsock and node is on the service PATH', async (t) => {
  const script = '/usr/lib/node_modules/podsock/dist/cli/main.js';
  t.same(podsockCommand({ script, execPath: '/usr/bin/node', onPath: '/usr/bin/podsock', onPathTarget: script }), ['/usr/bin/podsock']);
  t.same(podsockCommand({ script, execPath: '/home/u/.nvm/v20/bin/node', onPath: '/usr/bin/podsock', onPathTarget: script }), ['/home/u/.nvm/v20/bin/node', script], 'node outside the service PATH');
  t.same(podsockCommand({ script, execPath: '/usr/bin/node', onPath: '/usr/bin/podsock', onPathTarget: '/other/main.js' }), ['/usr/bin/node', script], 'another podsock');
  t.same(podsockCommand({ script: '/src/podsock/dist/cli/main.js', execPath: '/usr/bin/node', onPath: null, onPathTarget: null }), ['/usr/bin/node', '/src/podsock/dist/cli/main.js'], 'node dist/cli/main.js');
  t.same(
    podsockCommand({ script, execPath: '/usr/bin/node', onPath: '/usr/bin/podsock', onPathTarget: script, launcher: '/opt/podsock/build/Release/podsock-launch' }),
    ['/opt/podsock/build/Release/podsock-launch', '/usr/bin/node', script],
    'podsock-launch, when built, runs node and the script',
  );
  t.same(podsockCommand({ script, execPath: '/usr/bin/node', onPath: null, onPathTarget: null, launcher: null }), ['/usr/bin/node', script], 'no podsock-launch');
});

void t.test('layouts', async (t) => {
  t.same(layoutFor('user', 'web', null), {
    scope: 'user',
    unitDir: '~/.config/systemd/user',
    configDir: '~/.config/podsock',
    configInUnit: '%h/.config/podsock/web.container',
    systemctl: 'systemctl --user',
  });
  t.same(layoutFor('system', 'web', null), { scope: 'system', unitDir: '/etc/systemd/system', configDir: '/etc/podsock', configInUnit: '/etc/podsock/web.container', systemctl: 'systemctl' });
  t.equal(layoutFor('user', 'web', '/srv/my conf%').configInUnit, '"/srv/my conf%%/web.container"');
});

void t.test('next steps', async (t) => {
  t.equal(
    nextSteps({ name: 'web', layout: layoutFor('user', 'web', null), units: ['web.socket', 'web.service'], outputDir: '/tmp/out', template: false }),
    [
      'Next steps:',
      '  install -d ~/.config/systemd/user ~/.config/podsock',
      '  install -m 644 /tmp/out/web.socket /tmp/out/web.service ~/.config/systemd/user/',
      '  install -m 644 /tmp/out/web.container ~/.config/podsock/',
      '  podsock check web --config ~/.config/podsock/web.container',
      '  systemctl --user daemon-reload',
      '  systemctl --user enable --now web.socket',
      '  loginctl enable-linger "$USER"   # keep the socket listening while you are logged out',
      '',
    ].join('\n'),
  );
  const sys = nextSteps({ name: 'web', layout: layoutFor('system', 'web', null), units: ['web.socket'], outputDir: null, template: true });
  t.match(sys, /\n {2}sudo install -m 644 web\.socket podsock@\.service \/etc\/systemd\/system\/\n/);
  t.match(sys, /\n {2}sudo systemctl enable --now web\.socket\n/);
  t.notMatch(sys, /linger/);
});

void t.test('next steps run as root say no sudo', async (t) => {
  const asRoot = nextSteps({ name: 'web', layout: layoutFor('system', 'web', null), units: ['web.socket'], outputDir: null, template: true, root: true });
  t.notMatch(asRoot, /sudo/);
  t.match(asRoot, /\n {2}install -m 644 web\.socket podsock@\.service \/etc\/systemd\/system\/\n/);
  t.match(asRoot, /\n {2}systemctl enable --now web\.socket\n/);
});
