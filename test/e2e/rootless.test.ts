/**
 * podsock as an unprivileged user runs it: the user's own systemd user manager starts it from a
 * socket unit, it finds NAME.container in ~/.config/podsock/, keeps its cidfile and notify socket in
 * $XDG_RUNTIME_DIR/podsock/, and runs the container with rootless podman, in handover mode (the
 * listening socket goes through rootless podman's user-namespace re-exec into the container;
 * podman's pkg/rootless/rootless_linux.c) and in proxy mode (the backend port published through slirp4netns).
 * The test host comes from scripts/test-host-rootless.sh.
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { httpGet, uniqueName } from './harness.js';
import {
  commentLogOnFailure,
  endPauseProcess,
  installUserService,
  pausePid,
  rootlessEnv,
  userContainerExists,
  userPodman,
  userServiceState,
  userSystemctl,
  waitUserState,
  type RootlessEnv,
} from './rootless-harness.js';
import { handoverContainerFile, proxyContainerFile } from './service-files.js';

const r = rootlessEnv(t);

function cmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

/** The real, effective, saved and filesystem uids of a process, from /proc/PID/status. */
function uids(pid: string): string {
  try {
    return /^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.trim().split(/\s+/).join(' ') ?? '';
  } catch {
    return '';
  }
}

/** One `podman inspect --format` value of the user's container. */
async function inspect(r: RootlessEnv, container: string, format: string): Promise<string> {
  const res = await userPodman(r, 'inspect', '--format', format, container);
  if (res.exitCode !== 0) throw new Error(`'podman inspect ${container}' as '${r.user}' exited ${res.exitCode}: ${res.stderr.trim()}`);
  return res.stdout.trim();
}

/** Checks shared by both modes once the service is active: who runs podsock and the container. */
async function checkRunningAsUser(t: Test, r: RootlessEnv, name: string, containerName: string): Promise<void> {
  const s = await waitUserState(r, name, ['active'], 30_000);
  t.equal(s.MainPID, s.ExecMainPID, 'MainPID was never changed');
  t.match(cmdline(s.MainPID ?? ''), new RegExp(`dist/bin/podsock\\.cjs run ${name} `), 'the main pid is podsock');
  const user = `${r.uid} ${r.uid} ${r.uid} ${r.uid}`;
  t.equal(uids(s.MainPID ?? ''), user, `podsock runs as uid ${r.uid}`);
  const containerPid = await inspect(r, containerName, '{{.State.Pid}}');
  t.match(containerPid, /^[1-9]\d*$/, 'the container runs');
  t.equal(uids(containerPid), user, `the container's root is uid ${r.uid} on the host (rootless)`);
  t.equal(await inspect(r, containerName, '{{.State.Running}}'), 'true');
}

/** `systemctl --user stop`: a clean stop that leaves no container. */
async function checkStop(t: Test, r: RootlessEnv, name: string, containerName: string): Promise<void> {
  const stopped = await userSystemctl(r, 'stop', `${name}.service`);
  t.equal(stopped.exitCode, 0, 'systemctl --user stop succeeds', { stderr: stopped.stderr });
  const after = await userServiceState(r, name);
  t.equal(after.ActiveState, 'inactive');
  t.equal(after.Result, 'success', 'not failed');
  t.notOk(await userContainerExists(r, containerName), 'no container left after stop');
}

if (r !== null) {
  await t.test('rootless handover: socket through rootless podman, notify socket in $XDG_RUNTIME_DIR, READY and STATUS relayed', async (t) => {
    const name = uniqueName('rlho');
    const svc = await installUserService(t, r, name, {
      containerFile: handoverContainerFile(r, name, {
        container: ['Environment="FIXTURE_STATUS=rootless and ready"'],
        podsock: ['Ready=notify', 'IdleTimeout=infinity'],
      }),
    });
    commentLogOnFailure(t, svc.log);

    const res = await httpGet(svc.url('/first'), 60_000);
    t.equal(res.status, 200);
    t.equal(res.body, `hello from ${name} path=/first pid=1\n`, 'the container answered on the handed-over socket as its pid 1');
    await checkRunningAsUser(t, r, name, svc.containerName);

    // Found in ~/.config/podsock (the unit sets no configuration directory): the container is podsock's.
    t.equal(await inspect(r, svc.containerName, '{{index .Config.Labels "io.podsock.service"}}'), name);

    // The runtime directory is the user's $XDG_RUNTIME_DIR/podsock: cidfile and notify socket live there.
    const runtimeDir = join(r.xdgRuntimeDir, 'podsock');
    const id = await inspect(r, svc.containerName, '{{.Id}}');
    t.equal(readFileSync(join(runtimeDir, `${name}.cid`), 'utf8').trim(), id, `the cidfile is ${runtimeDir}/${name}.cid`);
    const mounts = (await inspect(r, svc.containerName, '{{range .Mounts}}{{.Source}}={{.Destination}}\n{{end}}')).split('\n');
    const notifyMount = mounts.find((m) => m.endsWith('=/run/podsock-notify'));
    t.ok(notifyMount?.startsWith(`${runtimeDir}/`), `the notify directory comes from ${runtimeDir}/ (${notifyMount ?? 'no such mount'})`);
    const notifyDir = notifyMount?.slice(0, -'=/run/podsock-notify'.length) ?? '';
    const sockets = notifyDir === '' ? [] : readdirSync(notifyDir).filter((f) => lstatSync(join(notifyDir, f)).isSocket());
    t.equal(sockets.length, 1, `one notify socket in ${notifyDir}`);
    t.equal(lstatSync(notifyDir).uid, r.uid, 'owned by the user');
    const env = await inspect(r, svc.containerName, '{{range .Config.Env}}{{println .}}{{end}}');
    t.match(env, new RegExp(`^NOTIFY_SOCKET=/run/podsock-notify/${sockets[0] ?? 'none'}$`, 'm'), "the container's NOTIFY_SOCKET names it");

    // The container's READY=1 and STATUS= reached the user's manager through podsock.
    const s = await userServiceState(r, name);
    t.match(s.StatusText, /^Serving: container '[^']+' ready in \d+ ms \(handover mode, no idle timeout\); container: rootless and ready$/);
    t.equal((await httpGet(svc.url('/second'), 30_000)).body, `hello from ${name} path=/second pid=1\n`);

    await checkStop(t, r, name, svc.containerName);
    t.same(readdirSync(runtimeDir).filter((f) => f.startsWith(`${name}.`)), [], 'the cidfile is gone');
  });

  await t.test("rootless handover as the user's first podman call: the socket survives the user-namespace re-exec", async (t) => {
    // With no pause process, rootless podman re-execs itself into a new user namespace; its C preamble
    // passes LISTEN_FDS on only when LISTEN_PID is its own pid, which podsock's trampoline makes so.
    const name = uniqueName('rlre');
    const svc = await installUserService(t, r, name, {
      containerFile: handoverContainerFile(r, name),
    });
    const ended = await endPauseProcess(r);
    t.equal(pausePid(r), null, `no pause process (ended ${ended ?? 'none'})`);
    const res = await httpGet(svc.url('/fresh'), 60_000);
    t.equal(res.body, `hello from ${name} path=/fresh pid=1\n`, 'the container answered on the handed-over socket');
    const fresh = pausePid(r);
    t.ok(fresh !== null && fresh !== ended, `podsock's podman run created a new pause process (${fresh ?? 'none'})`);
    await checkRunningAsUser(t, r, name, svc.containerName);
    await checkStop(t, r, name, svc.containerName);
  });

  await t.test('rootless IdleTimeout=2s: idle exit leaves no container; the next connection activates again', async (t) => {
    const name = uniqueName('rlid');
    const svc = await installUserService(t, r, name, {
      containerFile: handoverContainerFile(r, name, { podsock: ['IdleTimeout=2s'] }),
    });
    for (const path of ['/one', '/two']) {
      t.equal((await httpGet(svc.url(path), 60_000)).body, `hello from ${name} path=${path} pid=1\n`, `${path} answered`);
      const s = await waitUserState(r, name, ['inactive', 'failed'], 60_000);
      t.equal(s.ActiveState, 'inactive', `idle exit after ${path}`);
      t.equal(s.Result, 'success', 'a clean stop');
      t.notOk(await userContainerExists(r, svc.containerName), 'no container while idle');
    }
  });

  await t.test('rootless proxy: the backend port published through rootless networking, connections proxied', async (t) => {
    if (!r.network) {
      const why = `rootless 'podman run -p' does not work here: ${r.networkReason ?? 'unknown reason'}`;
      if (process.env.CI === 'true') t.fail(why);
      else t.pass('no rootless networking', { skip: why });
      return;
    }
    const name = uniqueName('rlpx');
    const svc = await installUserService(t, r, name, {
      containerFile: proxyContainerFile(r, name, { podsock: ['Ready=http:/health', 'IdleTimeout=infinity'] }),
    });
    commentLogOnFailure(t, svc.log);

    const res = await httpGet(svc.url('/first'), 60_000);
    t.equal(res.status, 200);
    t.match(res.body, new RegExp(`^hello from ${name} path=/first pid=\\d+\\n$`), 'answered by the fixture through the proxy');
    await checkRunningAsUser(t, r, name, svc.containerName);
    t.equal(await inspect(r, svc.containerName, '{{.HostConfig.NetworkMode}}'), 'slirp4netns', 'rootless networking');
    const ports = await inspect(r, svc.containerName, '{{range $p, $b := .HostConfig.PortBindings}}{{$p}}{{range $b}}>{{.HostIP}}:{{.HostPort}}{{end}}{{end}}');
    t.match(ports, /^8080\/tcp>127\.0\.0\.1:\d+$/, 'port 8080 published on loopback only');
    const s = await userServiceState(r, name);
    t.match(s.StatusText, /proxy mode/);

    const answers = await Promise.all([1, 2, 3, 4, 5].map((i) => httpGet(svc.url(`/c${i}`), 30_000)));
    t.same(answers.map((a) => a.status), [200, 200, 200, 200, 200], 'five concurrent requests answered');

    await checkStop(t, r, name, svc.containerName);
  });
}
