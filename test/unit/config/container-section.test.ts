import t from 'tap';
import { containerSectionToArgs, isValidContainerName, type ContainerSettings } from '../../../src/config/container-section.js';
import { parseUnitText } from '../../../src/config/unit-syntax.js';
import { caught } from '../../helpers/caught.js';
import { fixedSpecifiers } from '../../helpers/specifiers.js';

const FILE = '/etc/podsock/web.container';

/** Parses a [Container] body (lines after the header, which is line 1). */
function convert(body: string, pathExists: (p: string) => boolean = () => false): ContainerSettings {
  const unit = parseUnitText(`[Container]\n${body}\n`, FILE);
  const section = unit.sections[0];
  if (section === undefined) throw new Error('no section');
  return containerSectionToArgs(section, { file: FILE, pathExists, specifiers: fixedSpecifiers() });
}

function options(body: string): string[] {
  return convert(`Image=img\n${body}`).options;
}

void t.test('Image, Exec, ContainerName', async (t) => {
  const c = convert('Image=docker.io/library/nginx:1.25\nExec=nginx -g "daemon off;"\nContainerName=web-1');
  t.equal(c.image, 'docker.io/library/nginx:1.25');
  t.same(c.command, ['nginx', '-g', 'daemon off;']);
  t.equal(c.containerName, 'web-1');
  t.same(c.options, []);
  t.same(c.keyLines, { Image: 2, Exec: 3, ContainerName: 4 });
});

void t.test('defaults: no image, no command, no name', async (t) => {
  const c = convert('');
  t.equal(c.image, null);
  t.equal(c.command, null);
  t.equal(c.containerName, null);
  t.same(c.options, []);
});

void t.test('single values: last wins, one pair of double quotes removed', async (t) => {
  t.same(options('WorkingDir=/a\nWorkingDir="/b c"'), ['--workdir', '/b c']);
  t.same(options('HealthCmd="curl -f http://localhost/ || exit 1"'), ['--health-cmd', 'curl -f http://localhost/ || exit 1']);
  t.same(options("HealthCmd='x'"), ['--health-cmd', "'x'"]);
  t.same(options('Exec=a\nExec=b c'), []);
  t.same(convert('Image=img\nExec=a\nExec=b c').command, ['b', 'c']);
  t.equal(convert('Image=img\nExec=a\nExec=').command, null);
});

void t.test('each key maps like Quadlet', async (t) => {
  const table: Array<[string, string[]]> = [
    ['Environment="A=b c" D=e', ['--env', 'A=b c', '--env', 'D=e']],
    ['Environment=A=1\nEnvironment=B=2', ['--env', 'A=1', '--env', 'B=2']],
    ['Environment=A=1\nEnvironment=\nEnvironment=C=3', ['--env', 'C=3']],
    ['Environment="A=$(x)" B=`y` C=%h', ['--env', 'A=$(x)', '--env', 'B=`y`', '--env', 'C=/home/alice']],
    ['EnvironmentFile=/etc/web.env', ['--env-file', '/etc/web.env']],
    ['EnvironmentFile=web.env', ['--env-file', '/etc/podsock/web.env']],
    ['EnvironmentFile=../x.env "/a b.env"', ['--env-file', '/etc/x.env', '--env-file', '/a b.env']],
    ['Volume=/srv/data:/data:Z', ['-v', '/srv/data:/data:Z']],
    ['Volume=./data:/data', ['-v', '/etc/podsock/data:/data']],
    ['Volume=named:/data:ro,z', ['-v', 'named:/data:ro,z']],
    ['Volume=/anon', ['-v', '/anon']],
    ['Mount=type=bind,source=./src,destination=/dst', ['--mount', 'type=bind,source=/etc/podsock/src,destination=/dst']],
    ['Mount=type=tmpfs,destination=/t', ['--mount', 'type=tmpfs,destination=/t']],
    ['Tmpfs=/run\nTmpfs=/tmp:size=10m', ['--tmpfs', '/run', '--tmpfs', '/tmp:size=10m']],
    ['Network=host', ['--network', 'host']],
    ['Network=a\nNetwork=b:ip=10.0.0.2', ['--network', 'a', '--network', 'b:ip=10.0.0.2']],
    ['PublishPort=8080:80\nPublishPort=127.0.0.1::443/tcp', ['--publish', '8080:80', '--publish', '127.0.0.1::443/tcp']],
    ['User=1000', ['--user', '1000']],
    ['User=app\nGroup=staff', ['--user', 'app:staff']],
    ['WorkingDir=/srv', ['--workdir', '/srv']],
    ['Label=a=b "c=d e" bare', ['--label', 'a=b', '--label', 'c=d e', '--label', 'bare']],
    ['Annotation=x=y', ['--annotation', 'x=y']],
    ['ReadOnly=yes', ['--read-only']],
    ['ReadOnly=false', ['--read-only=false']],
    ['ReadOnly=On', ['--read-only']],
    ['NoNewPrivileges=true', ['--security-opt=no-new-privileges']],
    ['NoNewPrivileges=no', []],
    ['AddCapability=NET_ADMIN sys_time\nAddCapability=CAP_CHOWN', ['--cap-add', 'net_admin', '--cap-add', 'sys_time', '--cap-add', 'cap_chown']],
    ['DropCapability=ALL', ['--cap-drop', 'all']],
    ['DropCapability=all\nAddCapability=NET_BIND_SERVICE', ['--cap-drop', 'all', '--cap-add', 'net_bind_service']],
    ['HealthCmd=/bin/check\nHealthInterval=30s\nHealthRetries=3\nHealthStartPeriod=1m\nHealthTimeout=5s\nHealthOnFailure=kill\nHealthStartupCmd=/bin/s',
      ['--health-cmd', '/bin/check', '--health-interval', '30s', '--health-on-failure', 'kill', '--health-retries', '3',
        '--health-start-period', '1m', '--health-timeout', '5s', '--health-startup-cmd', '/bin/s']],
    ['Pull=never', ['--pull', 'never']],
    ['AutoUpdate=local', ['--label', 'io.containers.autoupdate=local']],
    ['PodmanArgs=--memory 512m --cpus=2', ['--memory', '512m', '--cpus=2']],
    ['PodmanArgs=--init\nPodmanArgs="--env=A=b c"', ['--init', '--env=A=b c']],
    ['RunInit=true\nEnvironmentHost=no', ['--init', '--env-host=false']],
    ['ReadOnlyTmpfs=yes', ['--read-only-tmpfs']],
    ['Timezone=local\nShmSize=1g\nPidsLimit=100\nEntrypoint=/bin/sh\nHostName=h\nStopSignal=SIGINT\nStopTimeout=20\nMemory=1g\nIP=10.88.0.5\nIP6=fd00::5',
      ['--tz', 'local', '--pids-limit', '100', '--shm-size', '1g', '--entrypoint', '/bin/sh', '--ip', '10.88.0.5', '--ip6', 'fd00::5',
        '--hostname', 'h', '--stop-signal', 'SIGINT', '--stop-timeout', '20', '--memory', '1g']],
    ['DNS=1.1.1.1\nDNSSearch=example.org\nDNSOption=ndots:1\nAddHost=db:10.0.0.9\nGroupAdd=keep-groups\nUlimit=nofile=1024:2048\nNetworkAlias=web',
      ['--network-alias', 'web', '--ulimit', 'nofile=1024:2048', '--dns', '1.1.1.1', '--dns-option', 'ndots:1', '--dns-search', 'example.org',
        '--group-add', 'keep-groups', '--add-host', 'db:10.0.0.9']],
    ['LogDriver=journald\nLogOpt=tag=web "x=a b"', ['--log-driver', 'journald', '--log-opt', 'tag=web', '--log-opt', 'x=a b']],
    ['CgroupsMode=split', ['--cgroups', 'split']],
    ['Sysctl=net.ipv4.ip_forward=1 net.core.somaxconn=1024', ['--sysctl', 'net.ipv4.ip_forward=1', '--sysctl', 'net.core.somaxconn=1024']],
    ['UserNS=keep-id\nUIDMap=0:1:1000\nGIDMap=0:1:1000\nSubUIDMap=app\nSubGIDMap=app',
      ['--userns', 'keep-id', '--uidmap', '0:1:1000', '--gidmap', '0:1:1000', '--subuidname', 'app', '--subgidname', 'app']],
    ['SecurityLabelDisable=yes\nSecurityLabelNested=1\nSecurityLabelType=spc_t\nSecurityLabelFileType=f_t\nSecurityLabelLevel=s0:c1',
      ['--security-opt', 'label=disable', '--security-opt', 'label=nested', '--security-opt', 'label=type:spc_t',
        '--security-opt', 'label=filetype:f_t', '--security-opt', 'label=level:s0:c1']],
    ['SeccompProfile=/etc/seccomp.json', ['--security-opt', 'seccomp=/etc/seccomp.json']],
    ['Mask=/proc/a /proc/b\nUnmask=ALL', ['--security-opt', 'mask=/proc/a', '--security-opt', 'mask=/proc/b', '--security-opt', 'unmask=ALL']],
    ['Secret=token,type=env,target=TOKEN', ['--secret', 'token,type=env,target=TOKEN']],
    ['ExposeHostPort=8080\nExposeHostPort=9000-9010/udp', ['--expose', '8080', '--expose', '9000-9010/udp']],
    ['VolatileTmp=yes', ['--tmpfs', '/tmp:rw,size=512M,mode=1777']],
    ['VolatileTmp=yes\nReadOnly=yes', ['--read-only']],
    ['AddDevice=/dev/fuse', ['--device', '/dev/fuse']],
  ];
  for (const [body, want] of table) t.same(options(body), want, body);
});

void t.test('AddDevice=-PATH is skipped when the host path does not exist', async (t) => {
  const seen: string[] = [];
  const c = convert('Image=i\nAddDevice=-/dev/missing -/dev/present:/dev/x:rw', (p) => {
    seen.push(p);
    return p === '/dev/present';
  });
  t.same(c.options, ['--device', '/dev/present:/dev/x:rw']);
  t.same(seen, ['/dev/missing', '/dev/present']);
});

void t.test('options come out in Quadlet order, independent of file order', async (t) => {
  t.same(options('PodmanArgs=--init\nEnvironment=A=1\nPublishPort=80\nVolume=/a:/b\nUser=1\nNetwork=host\nHealthCmd=x'), [
    '--network', 'host', '--user', '1', '-v', '/a:/b', '--publish', '80', '--env', 'A=1', '--health-cmd', 'x', '--init',
  ]);
});

void t.test('PodmanArgs --name overrides ContainerName', async (t) => {
  const c = convert('Image=i\nContainerName=a\nPodmanArgs=--name b --rm');
  t.equal(c.containerName, 'b');
  t.same(c.options, ['--rm']);
});

void t.test('empty ContainerName= or Image="" means unset', async (t) => {
  t.equal(convert('Image=i\nContainerName=""').containerName, null);
  t.equal(convert('Image=""').image, null);
});

void t.test('errors name file:line and key', async (t) => {
  const cases: Array<[string, string]> = [
    ['Imgae=x', `${FILE}:2: unknown key 'Imgae' in section [Container]: did you mean 'Image'?`],
    ['image=x', `${FILE}:2: unknown key 'image' in section [Container]: did you mean 'Image'? (keys are case-sensitive)`],
    ['Enviroment=A=1', `${FILE}:2: unknown key 'Enviroment' in section [Container]: did you mean 'Environment'?`],
    ['Frobnicate=1', `${FILE}:2: unknown key 'Frobnicate' in section [Container]: see podman-systemd.unit(5) for the [Container] keys; PodmanArgs= passes any other podman run option`],
    ['Image=i\nNotify=sometimes', `${FILE}:3: invalid value 'sometimes' for Notify= (allowed: 'healthy' or a boolean: 'yes', 'no', 'true', 'false', 'on', 'off', '1', '0')`],
    ['ReloadSignal=SIGHUP', `${FILE}:2: key 'ReloadSignal' in section [Container] is not supported by podsock: Quadlet turns it into the unit's ExecReload=, and the unit is yours: put 'ExecReload=podman kill --signal SIGNAL CONTAINER' in the .service file`],
    ['Pod=x.pod', `${FILE}:2: key 'Pod' in section [Container] is not supported by podsock: podsock runs one container per service; pods are not supported`],
    ['Rootfs=/r', `${FILE}:2: key 'Rootfs' in section [Container] is not supported by podsock: podsock runs containers from images; set Image=`],
    ['RemapUsers=auto', `${FILE}:2: key 'RemapUsers' in section [Container] is not supported by podsock: it is deprecated in Quadlet; use UserNS=, UIDMap= and GIDMap=`],
    ['Image=a\nImage=b', `${FILE}:3: Image= is set again (first on line 2); give exactly one image, or reset it with an empty 'Image=' first`],
    ['Image=web.image', `${FILE}:2: Image='web.image' refers to a Quadlet unit; podsock needs an image name such as 'docker.io/library/nginx:latest'`],
    ['Image=--privileged', `${FILE}:2: Image='--privileged' starts with '-': podman would read it as an option; expected an image name such as 'docker.io/library/nginx:latest'`],
    ['Image=-v/:/host', `${FILE}:2: Image='-v/:/host' starts with '-': podman would read it as an option; expected an image name such as 'docker.io/library/nginx:latest'`],
    ['Image=i\nReadOnly=maybe', `${FILE}:3: invalid boolean 'maybe' for ReadOnly (allowed: 'yes', 'no', 'true', 'false', 'on', 'off', '1', '0')`],
    ['Image=i\nNoNewPrivileges=2', `${FILE}:3: invalid boolean '2' for NoNewPrivileges (allowed: 'yes', 'no', 'true', 'false', 'on', 'off', '1', '0')`],
    ['Image=i\nContainerName=-bad', `${FILE}:3: invalid container name '-bad' (podman names start with a letter or digit, followed by letters, digits, '_', '.' or '-')`],
    ['Image=i\nContainerName=a/b', `${FILE}:3: invalid container name 'a/b' (podman names start with a letter or digit, followed by letters, digits, '_', '.' or '-')`],
    ['Image=i\nGroup=staff', `${FILE}:3: Group= is set without User=; podman takes the group as --user USER:GROUP`],
    ['Image=i\nNetwork=backend.network', `${FILE}:3: Network='backend.network' refers to a Quadlet unit; podsock needs a podman network name or mode (e.g. 'host', 'none', 'mynet')`],
    ['Image=i\nVolume=data.volume:/d', `${FILE}:3: Volume='data.volume:/d' refers to a Quadlet .volume unit; use a podman volume name or a host path`],
    ['Image=i\nExposeHostPort=http', `${FILE}:3: invalid port 'http' for ExposeHostPort= (expected PORT, PORT-PORT, optionally with '/tcp' or '/udp')`],
    ['Image=i\nExec=sh -c "unterminated', `${FILE}:3: Exec: unterminated double quote in 'sh -c "unterminated'`],
    ['Image=i\nEnvironment=A=1 oops', `${FILE}:3: Environment: invalid environment assignment 'oops' (expected NAME=VALUE; quote values that contain spaces: "NAME=a b")`],
    ['Image=i\nPodmanArgs=--detach', `${FILE}:3: PodmanArgs: option '--detach' cannot be used with podsock: podsock decides how podman runs the container`],
    ['Image=i\nPodmanArgs=--rm\nPodmanArgs=--sdnotify=conmon', `${FILE}:3-4: PodmanArgs: option '--sdnotify=conmon' cannot be used with podsock: podsock sets the notify mode itself; choose readiness with Ready= in [Podsock] or --ready`],
    ['Image=i\nPodmanArgs=--rm myimage', `${FILE}:3: PodmanArgs: 'myimage' is not an option; PodmanArgs= may only contain options (set the image with Image= and the command with Exec=)`],
    ['Image=i\nPodmanArgs=--name bad/name', `${FILE}:3: PodmanArgs: invalid container name 'bad/name' in '--name'`],
    ['Image=i\nAddCapability="NET_ADMIN', `${FILE}:3: AddCapability: unterminated double quote in '"NET_ADMIN'`],
  ];
  for (const [body, message] of cases) {
    const err = caught(() => convert(body));
    t.equal(err.code, 'PODSOCK_ERR_CONFIG', body);
    t.equal(err.message, message, body);
  }
  const err = caught(() => convert('Image=i\nReadOnly=maybe'));
  t.same(err.details, { file: FILE, line: 3, section: 'Container', key: 'ReadOnly', value: 'maybe' });
});

void t.test('word lists keep backslashes (Quadlet LookupAllStrv)', async (t) => {
  t.same(options('Sysctl=a\\b'), ['--sysctl', 'a\\b']);
});

void t.test('isValidContainerName', async (t) => {
  for (const n of ['a', 'A1', 'web-1', 'web_1.x', '0']) t.equal(isValidContainerName(n), true, n);
  for (const n of ['', '-a', '.a', '_a', 'a b', 'a@b', 'a/b']) t.equal(isValidContainerName(n), false, n);
});

void t.test('AutoUpdate=: the policies of podman auto-update, a fully-qualified image for registry', async (t) => {
  const of = (body: string): ContainerSettings => convert(body);
  t.equal(of('Image=quay.io/x/app:1\nAutoUpdate=registry').autoUpdate, 'registry');
  t.same(of('Image=quay.io/x/app:1\nAutoUpdate=registry').options, ['--label', 'io.containers.autoupdate=registry']);
  t.equal(of('Image=127.0.0.1:5000/app:latest\nAutoUpdate=image').autoUpdate, 'registry', "'image' is podman's older name for 'registry'");
  t.equal(of('Image=localhost/app\nAutoUpdate=registry').autoUpdate, 'registry');
  t.equal(of('Image=app\nAutoUpdate=local').autoUpdate, 'local');
  t.equal(of('Image=app\nAutoUpdate=disabled').autoUpdate, null);
  t.same(of('Image=app\nAutoUpdate=disabled').options, []);
  t.equal(of('Image=app\nAutoUpdate=local\nAutoUpdate=').autoUpdate, null, 'an empty value resets');
  t.equal(of('Image=app').autoUpdate, null);
  t.match(caught(() => of('Image=app\nAutoUpdate=always')), {
    code: 'PODSOCK_ERR_CONFIG',
    message: `${FILE}:3: invalid value 'always' for AutoUpdate= (allowed: 'registry', 'local', 'disabled'; 'image' is podman's older name for 'registry')`,
  });
  t.match(caught(() => of('Image=library/app:1\nAutoUpdate=registry')), { code: 'PODSOCK_ERR_CONFIG', message: /web\.container:3: AutoUpdate=registry needs a fully-qualified image .* got Image='library\/app:1'/ });
  t.match(caught(() => of('Image=nginx:latest\nAutoUpdate=registry')), { message: /needs a fully-qualified image/ });
});
