/**
 * The supervisor owns one service's lifecycle and is the only place that wires the parts together:
 * starting → ready → (idle | stop | container exit) → stopped.
 *
 * One activation: start the container (handing over the fds or publishing the backend on loopback),
 * race readiness against the container's exit, the StartTimeout deadline and a stop request; tell
 * systemd READY=1 and a status line from podsock's own pid (the unit's main pid stays podsock); relay
 * the container's allowed notify messages; drive the idle timer from the frontend's connection count;
 * and stop the container (by cid) before returning. Under systemd one activation is the whole life of
 * the process; standalone (`--listen`) the supervisor waits for the next connection and starts again.
 *
 * Every timer and listener of an activation hangs off one AbortController, so a stop cancels them all.
 */
import { chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from './log.js';
import type { ServiceConfig } from './config/load.js';
import { PodsockError, isPodsockError, q } from './errors.js';
import { IdleTimer } from './idle/idle-timer.js';
import { QuietRelease } from './memory/quiet-release.js';
import type { Frontend } from './frontend.js';
import { tcpGraceFor } from './readiness/tcp-grace.js';
import { NETNS_BACKEND_HOST, openContainerNetns } from './runtime/container-netns.js';
import { checkPublishedPorts } from './runtime/published-port.js';
import { waitReady } from './readiness/wait-ready.js';
import { podmanRunCommand, shellQuote } from './runtime/podman-argv.js';
import { commandDigest, planBytes, removePlan, writePlan, type Prestart } from './runtime/prestart.js';
import {
  adoptRun,
  detachAvailable,
  discardPrestart,
  imageExists,
  killContainerNow,
  podmanCommand,
  startRun,
  stopContainer,
  waitForCidfile,
  type ExitInfo,
  type Podman,
  type RunningContainer,
} from './runtime/podman.js';
import type { ListenFd } from './sd/listen-fds.js';
import { closeFd } from './sd/native.js';
import { filterContainerMessage, type RelayPhase } from './sd/relay-filter.js';
import { NotifyServer, type NotifyMessage } from './sd/notify-server.js';
import { formatTimespan } from './config/timespan.js';
import { backoffFor, clearFailures, HEALTHY_AFTER_MS, recordFailure } from './start-failures.js';
import { privateDir, RUNTIME_DIR_LEVELS } from './private-files.js';

/** What podsock tells systemd (a Notifier from sd/notify-client, or a no-op). */
export interface SystemdNotifier {
  notify(fields: Record<string, string> | Array<[string, string]>): void;
}

export interface SupervisorOptions {
  cfg: ServiceConfig;
  log: Logger;
  systemd: SystemdNotifier;
  /**
   * The podman to run, or a function that finds it (resolvePodman), called at the first start: podman
   * missing is then a failed start like any other and backs off, instead of crash-looping the socket.
   */
  podman: Podman | (() => Podman);
  /** Private runtime directory for the cidfile and the notify socket's directory. */
  runtimeDir: string;
  /** The listening sockets (adopted from systemd or bound by --listen). */
  listeners: ListenFd[];
  /** How connections are seen: proxy (accepts) or handover (kernel counts). */
  frontend: Frontend;
  /** true with --listen: keep listening after an idle stop and start again on the next connection. */
  standalone: boolean;
  /** The unit name for PODMAN_SYSTEMD_UNIT, or null. */
  unit: string | null;
  /** podsock's own watchdog (WATCHDOG_USEC), or null. */
  watchdog: { intervalMs: number } | null;
  /** Loopback ports podsock picked for the backends (proxy mode, unless directBackend), by backend index. */
  backendHostPorts: number[];
  /**
   * Proxy mode: reach the container's loopback from inside its network namespace instead of publishing
   * (runtime/container-netns.ts); needs podman detached (the conmon pid file).
   */
  directBackend: boolean;
  /** podsock's uid: published ports must be listened on by it (runtime/published-port.ts). */
  uid?: number;
  /** Relabel the notify mount for SELinux. */
  selinux: boolean;
  /** Where consecutive failures are remembered across activations (start-failures.ts). */
  failureFile: string;
  /** podman runs rootless (podsock is not root): published ports go through a user-space forwarder. */
  rootless: boolean;
  /** podman as podsock-launch started it before podsock (runtime/prestart.ts), for the first start only. */
  prestart?: Extract<Prestart, { kind: 'started' }> | null;
  /**
   * Give back what start-up or serving needed (memory/release.ts): called after each period of
   * QUIET_RELEASE_MS without connections once the service is ready (memory/quiet-release.ts).
   */
  release?: () => void;
  /** Where to leave the plan for podsock-launch once a start succeeded, and the files it depends on (asked for then, not at start-up). */
  plan?: { path: string; checkFiles: () => string[] } | null;
}

type Outcome =
  | { kind: 'idle' }
  | { kind: 'stopped' }
  | { kind: 'exited'; info: ExitInfo };

const EXTEND_MARGIN_MS = 10_000;
/** Time without connections after which memory touched by serving is given back again. */
const QUIET_RELEASE_MS = 5_000;
/** Characters of the container's STATUS= kept in podsock's status line. */
const CONTAINER_STATUS_MAX = 1024;

/** Runs the service; `run()` resolves with the process exit status. */
export class Supervisor {
  private readonly o: SupervisorOptions;
  private readonly log: Logger;
  private stopRequested = false;
  private readonly stopController = new AbortController();
  private stopCount = 0;
  private current: RunningContainer | null = null;
  /** When the current container became ready (null before). */
  private readySince: number | null = null;
  private lastFailure = '';
  private resolvedPodman: Podman | null = null;
  private prestart: Extract<Prestart, { kind: 'started' }> | null;

  constructor(o: SupervisorOptions) {
    this.o = o;
    this.log = o.log;
    this.prestart = o.prestart ?? null;
  }

  private podman(): Podman {
    this.resolvedPodman ??= typeof this.o.podman === 'function' ? this.o.podman() : this.o.podman;
    return this.resolvedPodman;
  }

  /** First call: graceful stop (STOPPING=1, podman stop). Second call: stop at once. */
  requestStop(reason: string): void {
    this.stopCount += 1;
    if (this.stopCount === 1) {
      this.log.info({ reason }, 'Stopping');
      this.stopRequested = true;
      this.stopController.abort(new PodsockError('PODSOCK_ERR_INTERNAL', `stop requested (${reason})`));
    } else {
      this.log.warn({ reason }, 'Second stop request: stopping at once');
      // Kill the container now (a stop with no grace period also ends one that a killed `podman stop`
      // left half-stopped), then exit; the unit's ExecStopPost= removes whatever remains.
      if (this.current !== null || this.resolvedPodman !== null) {
        try {
          killContainerNow(this.podman(), this.o.cfg.containerName);
        } catch (err) {
          this.log.warn({ err }, 'Cannot kill the container, ignoring');
        }
      }
      this.current?.kill('SIGKILL');
      process.exit(0);
    }
  }

  private status(text: string): void {
    this.notify([['STATUS', text]]);
  }

  private notify(fields: Array<[string, string]>): void {
    try {
      this.o.systemd.notify(fields);
    } catch (err) {
      this.log.warn({ err }, 'Failed to notify systemd, ignoring');
    }
  }

  async run(): Promise<number> {
    const { frontend } = this.o;
    try {
      if (!this.o.standalone) {
        await frontend.start();
        let code: number;
        try {
          code = await this.activationToExit();
        } catch (err) {
          code = this.fail(err);
        }
        // A clean exit, or a container that served for a while, ends a failure streak.
        if (code === 0 || (this.readySince !== null && Date.now() - this.readySince >= HEALTHY_AFTER_MS)) clearFailures(this.o.failureFile);
        // A plan that ended in a failure is not repeated before podsock has looked at the configuration.
        if (code !== 0 && this.o.plan) removePlan(this.o.plan.path);
        if (code !== 0 && !this.stopRequested) await this.backOff();
        return code;
      }
      for (;;) {
        await frontend.start(); // again after an idle stop: accept (proxy) or watch (handover) anew
        this.status(`Waiting for a connection on ${this.o.listeners.length} socket(s)`);
        this.log.info('Waiting for the first connection');
        const woke = await frontend.waitForConnection(this.stopController.signal);
        if (!woke || this.stopRequested) return 0;
        const outcome = await this.activation();
        if (outcome.kind === 'stopped' || this.stopRequested) return 0;
        if (outcome.kind === 'exited' && outcome.info.code !== 0) {
          this.log.error({ code: outcome.info.code, signal: outcome.info.signal }, `Container ${q(this.o.cfg.containerName)} failed; starting it again on the next connection`);
        }
      }
    } catch (err) {
      return this.fail(err);
    } finally {
      await frontend.close();
    }
  }

  private async activationToExit(): Promise<number> {
    const outcome = await this.activation();
    switch (outcome.kind) {
      case 'idle':
      case 'stopped':
        return 0;
      case 'exited': {
        const { code } = outcome.info;
        if (code === 0) {
          this.log.info(`Container ${q(this.o.cfg.containerName)} exited with status 0`);
          return 0;
        }
        const err = new PodsockError(
          'PODSOCK_ERR_CONTAINER_FAILED',
          `Container ${q(this.o.cfg.containerName)} exited with ${exitText(outcome.info)}`,
          { exitCode: code !== null && code > 0 && code < 256 ? code : 1 },
        );
        return this.fail(err);
      }
    }
  }

  /** Log a failure once, tell systemd, and give the exit status from the catalogue. */
  private fail(err: unknown): number {
    const e = isPodsockError(err) ? err : new PodsockError('PODSOCK_ERR_INTERNAL', `Internal error: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    this.log.error({ err: e }, e.message);
    this.lastFailure = e.message;
    const fields: Array<[string, string]> = [['STATUS', `Failed: ${e.message}`]];
    if (e.code === 'PODSOCK_ERR_CONTAINER_EXITED' || e.code === 'PODSOCK_ERR_CONTAINER_FAILED') fields.push(['ERRNO', String(e.exitCode)]);
    this.notify(fields);
    return e.exitCode;
  }

  /** One start → ready → serve → stop cycle. Throws on start failures (after cleaning up). */
  private async activation(): Promise<Outcome> {
    const { cfg, frontend } = this.o;
    const started = Date.now();
    const ac = new AbortController();
    const onStop = (): void => ac.abort(this.stopController.signal.reason);
    this.stopController.signal.addEventListener('abort', onStop, { once: true });
    let phase: RelayPhase = 'starting';
    let containerPings = false;
    let containerStatus: string | null = null;
    let ownStatus = '';
    // The container's part is cut so that the whole datagram stays under systemd's 4096 bytes.
    const composeStatus = (): string =>
      containerStatus !== null && containerStatus !== ''
        ? `${ownStatus}; container: ${containerStatus.length > CONTAINER_STATUS_MAX ? `${containerStatus.slice(0, CONTAINER_STATUS_MAX - 1)}…` : containerStatus}`
        : ownStatus;
    const setStatus = (text: string): void => {
      ownStatus = text;
      this.notify([['STATUS', composeStatus()]]);
    };
    let cid: string | null = null;
    let watchdogTimer: NodeJS.Timeout | null = null;
    let notifyServer: NotifyServer | null = null;
    let podmanNotify: NotifyServer | null = null;
    let idle: IdleTimer | null = null;
    let quiet: QuietRelease | null = null;

    let resolveNotified!: () => void;
    const notified = new Promise<void>((r) => (resolveNotified = r));
    // podman's own READY=1 (--sdnotify=conmon): the container is running.
    let resolveRunning!: () => void;
    const podmanSaysRunning = new Promise<void>((r) => (resolveRunning = r));

    const cidfile = join(this.o.runtimeDir, `${cfg.name}.cid`);
    // The runtime directory is podsock's alone: it keeps the notify directory below it private on the host.
    privateDir(this.o.runtimeDir, RUNTIME_DIR_LEVELS);
    // podman detached (-d): no podman process stays while the container runs; conmon is watched instead.
    const conmonPidfile = detachAvailable() ? join(this.o.runtimeDir, `${cfg.name}.conmon.pid`) : null;
    const direct = cfg.mode === 'proxy' && this.o.directBackend && conmonPidfile !== null;
    const pidfile = direct ? join(this.o.runtimeDir, `${cfg.name}.pid`) : null;
    // The container's network namespace (direct), opened once it runs and closed when this activation ends.
    let netns: number | null = null;
    const watch = conmonPidfile === null ? ({ detached: false } as const) : ({ detached: true, conmonPidfile } as const);
    // The cidfile and pidfile go before a start and after it. A podman podsock-launch started may have
    // written them already (it removed the old ones itself).
    let pre = this.prestart;
    this.prestart = null;
    const removeRunFiles = (): void => {
      rmSync(cidfile, { force: true }); // podman refuses an existing cidfile (podman-run(1), --cidfile)
      if (pidfile !== null) rmSync(pidfile, { force: true });
      if (conmonPidfile !== null) rmSync(conmonPidfile, { force: true });
    };
    if (pre === null) removeRunFiles();

    const onContainerMessage = (msg: NotifyMessage): void => {
      const d = filterContainerMessage(msg.fields, phase);
      for (const x of d.dropped) this.log.debug({ key: x.key, pid: msg.pid }, `Dropped ${x.key}= from the container: ${x.reason}`);
      // The container's STATUS= joins podsock's own line instead of replacing it, so `systemctl status`
      // shows both what podsock is doing and what the app says.
      const forward: Array<[string, string]> = [];
      for (const [k, v] of d.forward) {
        if (k === 'STATUS') {
          containerStatus = v;
          forward.push(['STATUS', composeStatus()]);
        } else forward.push([k, v]);
      }
      if (d.ready) resolveNotified();
      if (d.watchdog) {
        if (!containerPings) this.log.debug('The container pings the watchdog itself; forwarding its pings');
        containerPings = true;
        if (this.o.watchdog !== null) this.notify([['WATCHDOG', '1']]);
      }
      if (forward.length > 0) this.notify(forward);
    };

    try {
      // The container's socket, and podman's own (--sdnotify=conmon), which stays in a 0700 directory of
      // its own: the container never sees it. Taken over from podsock-launch when it started podman.
      const notifyServers = async (adopt: Array<{ fd: number; dir: string }> | null): Promise<[NotifyServer, NotifyServer]> => {
        const container = await NotifyServer.create({
          parentDir: this.o.runtimeDir,
          ...(adopt !== null ? { adopt: adopt[0] as { fd: number; dir: string } } : {}),
          onMessage: onContainerMessage,
          onDrop: (d) => this.log.debug({ pid: d.pid }, `Dropped a ${d.reason} notify datagram from the container: ${d.detail}, ignoring`),
          onError: (err) => this.log.warn({ err }, 'Container notify socket failed, ignoring'),
        });
        try {
          const own = await NotifyServer.create({
            parentDir: this.o.runtimeDir,
            ...(adopt !== null ? { adopt: adopt[1] as { fd: number; dir: string } } : {}),
            onMessage: (msg) => {
              if (msg.fields.some(([k, v]) => k === 'READY' && v === '1')) {
                this.log.debug({ ms: Date.now() - started }, `podman reports container ${q(cfg.containerName)} running`);
                resolveRunning();
              }
            },
            onError: (err) => this.log.warn({ err }, 'podman notify socket failed, ignoring'),
          });
          return [container, own];
        } catch (err) {
          container.close();
          throw err;
        }
      };
      if (pre !== null) {
        try {
          [notifyServer, podmanNotify] = await notifyServers(pre.notify);
        } catch (err) {
          this.log.warn({ err }, 'Cannot take over the notify sockets podsock-launch made; starting podman afresh');
          await discardPrestart(pre);
          pre = null;
          removeRunFiles();
        }
      }
      if (notifyServer === null || podmanNotify === null) [notifyServer, podmanNotify] = await notifyServers(null);
      // Traversable (not listable) so that a container running as another uid reaches the 0777 socket
      // through its bind mount; on the host the 0700 runtime directory above keeps it private.
      chmodSync(notifyServer.dir, 0o711);
      const publish = cfg.mode === 'proxy' && !direct ? cfg.backends.map((b, i) => ({ hostPort: this.o.backendHostPorts[i] ?? 0, containerPort: b.port })) : [];
      // Where the backends are: the container's loopback inside its namespace (direct) or the published loopback ports.
      const backends = (): Array<{ host: string; port: number; netns?: number }> =>
        direct
          ? netns === null
            ? []
            : cfg.backends.map((b) => ({ host: NETNS_BACKEND_HOST, port: b.port, netns: netns as number }))
          : publish.map((p) => ({ host: '127.0.0.1', port: p.hostPort }));
      // Once the container runs: open its namespace, or check that the published ports are podsock's own.
      let backendChecked = false;
      const reachBackend = (): void => {
        if (cfg.mode !== 'proxy' || backendChecked) return;
        if (pidfile !== null && conmonPidfile !== null) netns = openContainerNetns(pidfile, conmonPidfile, cfg.containerName);
        else checkPublishedPorts(publish, this.o.uid ?? 0, cfg.containerName);
        backendChecked = true;
      };
      const cmd = podmanRunCommand(cfg, {
        cidfile,
        notifyDir: notifyServer.dir,
        notifySocketName: notifyServer.socketName,
        podmanNotifySocket: podmanNotify.socketPath,
        handover: cfg.mode === 'handover' ? { names: this.o.listeners.map((l) => l.name) } : null,
        publish,
        conmonPidfile,
        pidfile,
        unit: this.o.unit,
        selinux: this.o.selinux,
      });
      this.log.debug({ argv: shellQuote(['podman', ...cmd.args]) }, 'Starting podman');
      setStatus(`Starting container ${q(cfg.containerName)} from ${q(cfg.image)}`);
      // Keep systemd from killing a slow first start (image pull, slow init) that is within StartTimeout
      // (EXTEND_TIMEOUT_USEC= in sd_notify(3)).
      this.notify([['EXTEND_TIMEOUT_USEC', String((cfg.startTimeoutMs + cfg.stopTimeoutMs + EXTEND_MARGIN_MS) * 1000)]]);
      const fds = cfg.mode === 'handover' ? this.o.listeners.map((l) => l.fd) : [];
      const podman = this.podman();
      const envp = { ...podman.env, ...cmd.env };
      let run: RunningContainer | null = null;
      if (pre !== null) {
        const given = pre;
        pre = null; // adopted or stopped below, either way no longer waiting for an owner
        if (commandDigest(podman.binary, [podman.binary, ...cmd.args], envp) === given.digest) {
          run = adoptRun(given.pid, watch);
          if (run !== null) this.log.debug({ pid: given.pid }, 'podman was started by podsock-launch from the last plan; adopted it');
        } else {
          this.log.info({ pid: given.pid }, 'podsock-launch started podman from an out-of-date plan; stopping it and starting podman afresh');
          await discardPrestart(given);
        }
        if (run === null) removeRunFiles();
      }
      run ??= startRun(podman, cmd, fds, watch);
      this.current = run;
      if (this.o.watchdog !== null) {
        const every = Math.max(100, Math.floor(this.o.watchdog.intervalMs / 2));
        watchdogTimer = setInterval(() => {
          if (!containerPings) this.notify([['WATCHDOG', '1']]);
        }, every);
      }

      let runningCid: Promise<string> | null = null;
      const running = (): Promise<string> =>
        (runningCid ??= (async () => {
          const id = await waitForCidfile(cidfile, ac.signal);
          if (id === null) throw ac.signal.reason as Error;
          cid = id;
          await new Promise<void>((resolve, reject) => {
            if (ac.signal.aborted) return reject(ac.signal.reason as Error);
            ac.signal.addEventListener('abort', () => reject(ac.signal.reason as Error), { once: true });
            void podmanSaysRunning.then(resolve);
          });
          reachBackend();
          return id;
        })());

      // Readiness races the container's exit, the deadline and a stop request.
      const deadline = new Promise<'timeout'>((resolve) => {
        const t = setTimeout(() => resolve('timeout'), cfg.startTimeoutMs);
        ac.signal.addEventListener('abort', () => clearTimeout(t), { once: true });
      });
      const ready = waitReady(cfg.ready, {
        signal: ac.signal,
        running,
        notified,
        backend: () => backends()[0] ?? null,
        // Inside the namespace a connect reaches the app itself: refused until it listens, no forwarder.
        tcpGraceMs: direct ? 0 : tcpGraceFor({ rootless: this.o.rootless, podmanOptions: cfg.podmanOptions }),
        podman: (args, signal) => podmanCommand(this.podman(), args, signal),
      }).then(() => {
        // Ready=notify never waited for running(): the container runs once it said READY=1.
        reachBackend();
        return 'ready' as const;
      });
      ready.catch(() => undefined);
      const stopped = new Promise<'stop'>((resolve) => {
        if (ac.signal.aborted) resolve('stop');
        ac.signal.addEventListener('abort', () => resolve('stop'), { once: true });
      });
      const exitedEarly = run.exited.then((info) => ({ exit: info }));
      // A failure of podsock's own (the backend cannot be reached safely) ends the start like a timeout.
      const first = await Promise.race([ready, deadline, stopped, exitedEarly]).catch((err: unknown) => ({ error: err }));
      if (typeof first === 'object' && 'error' in first) {
        ac.abort(new Error('start failed'));
        await this.stopAndReap(run, cid, 'start failed');
        throw first.error;
      }

      if (first === 'stop') {
        await this.stopAndReap(run, cid, 'Stop requested while starting');
        return { kind: 'stopped' };
      }
      if (first === 'timeout') {
        ac.abort(new Error('start timeout'));
        await this.stopAndReap(run, cid, 'StartTimeout passed');
        throw new PodsockError(
          'PODSOCK_ERR_READY_TIMEOUT',
          `Container ${q(cfg.containerName)} was not ready (Ready=${readyLabel(cfg)}) within StartTimeout=${formatTimespan(cfg.startTimeoutMs)}`,
        );
      }
      if (typeof first === 'object') {
        ac.abort(new Error('container exited'));
        throw await this.exitedBeforeReady(first.exit);
      }

      // Ready.
      phase = 'ready';
      this.readySince = Date.now();
      const took = Date.now() - started;
      frontend.ready(backends());
      if (direct) this.log.debug(`Proxying to container ${q(cfg.containerName)} from inside its network namespace`);
      const idleText = cfg.idleTimeoutMs === null ? 'no idle timeout' : `idle timeout ${formatTimespan(cfg.idleTimeoutMs)}`;
      ownStatus = `Serving: container ${q(cfg.containerName)} ready in ${took} ms (${cfg.mode} mode, ${idleText})`;
      this.notify([
        ['READY', '1'],
        ['STATUS', composeStatus()],
      ]);
      this.log.info({ ms: took, container: cfg.containerName, mode: cfg.mode }, `Container ${q(cfg.containerName)} ready`);
      // Published ports are picked anew each time: only a command without them can be started early.
      if (this.o.plan && publish.length === 0) {
        try {
          writePlan(
            this.o.plan.path,
            planBytes({
              checkFiles: this.o.plan.checkFiles(),
              mkdirs: [this.o.runtimeDir],
              unlinks: [cidfile, pidfile, conmonPidfile].filter((f): f is string => f !== null),
              notify: [
                { dir: notifyServer.dir, mode: 0o711 },
                { dir: podmanNotify.dir, mode: 0o700 },
              ],
              fds: fds.length,
              exe: podman.binary,
              argv: [podman.binary, ...cmd.args],
              env: envp,
            }),
          );
        } catch (err) {
          this.log.warn({ err }, 'Cannot write the plan for podsock-launch, ignoring');
        }
      }

      // Serving: race idle, stop and the container's own exit.
      const idleFired = new Promise<'idle'>((resolve) => {
        idle = new IdleTimer({ timeoutMs: cfg.idleTimeoutMs, onIdle: () => resolve('idle') });
      });
      const activeIdle = idle as unknown as IdleTimer;
      const release = this.o.release;
      if (release !== undefined) quiet = new QuietRelease({ quietMs: QUIET_RELEASE_MS, release });
      const activeQuiet = quiet as QuietRelease | null;
      frontend.onActivity((n) => {
        activeIdle.activity(n);
        activeQuiet?.activity(n);
      });
      activeIdle.activity(frontend.activeCount());
      (quiet as QuietRelease | null)?.activity(frontend.activeCount());
      const next = await Promise.race([idleFired, stopped, run.exited.then((info) => ({ exit: info }))]);
      if (typeof next === 'object') {
        frontend.notReady();
        return { kind: 'exited', info: next.exit };
      }
      phase = 'stopping';
      if (next === 'idle') {
        this.log.info(`Idle for ${formatTimespan(cfg.idleTimeoutMs ?? 0)}: stopping container ${q(cfg.containerName)}`);
        // Stop accepting before deciding to exit: whatever arrives now waits in the kernel backlog for
        // the next activation (systemd's socket, or our own listener in standalone mode).
        await frontend.stopAccepting();
        // A connection accepted in the same instant is served to its end (bounded) before the container goes.
        if (frontend.activeCount() > 0) await frontend.drain(this.o.cfg.stopTimeoutMs);
        this.notify([['STOPPING', '1']]);
        setStatus('Idle: stopping the container');
        await this.stopAndReap(run, cid, 'idle');
        frontend.notReady();
        return { kind: 'idle' };
      }
      this.notify([['STOPPING', '1']]);
      setStatus('Stopping the container');
      await frontend.stopAccepting();
      await this.stopAndReap(run, cid, 'stop requested');
      return { kind: 'stopped' };
    } finally {
      // A failure before the prestarted podman was adopted: it is podsock's child and must not outlive it.
      if (pre !== null) await discardPrestart(pre);
      this.stopController.signal.removeEventListener('abort', onStop);
      ac.abort(new Error('activation over'));
      if (watchdogTimer !== null) clearInterval(watchdogTimer);
      (idle as IdleTimer | null)?.close();
      (quiet as QuietRelease | null)?.close();
      frontend.onActivity(null);
      notifyServer?.close();
      podmanNotify?.close();
      if (netns !== null) closeFd(netns);
      removeRunFiles();
      this.current = null;
    }
  }

  /**
   * After a failure, before exiting: wait longer the more activations failed in a row, so that a
   * crash loop cannot trip the socket's trigger limit (start-failures.ts). A stop request ends the wait.
   */
  private async backOff(): Promise<void> {
    const n = recordFailure(this.o.failureFile, Date.now());
    const ms = backoffFor(n);
    if (ms === 0) return;
    const text = `Failed ${n} times in a row; waiting ${Math.round(ms / 1000)} s before exiting to avoid a restart storm. Last: ${this.lastFailure}`;
    this.log.warn(text);
    this.notify([['STATUS', text]]);
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.stopController.signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.stopController.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** The container is gone before it was ready: say why, precisely, and make sure nothing is left. */
  private async exitedBeforeReady(info: ExitInfo): Promise<PodsockError> {
    const { cfg } = this.o;
    // Whatever podman left behind goes (a podman signalled early can leave a container created, not started).
    await stopContainer(this.podman(), { cid: null, name: cfg.containerName }, 0).catch(() => undefined);
    if (info.code === 125 && !(await imageExists(this.podman(), cfg.image).catch(() => true))) {
      return new PodsockError(
        'PODSOCK_ERR_PODMAN',
        `Failed to start container ${q(cfg.containerName)}: image ${q(cfg.image)} is not present locally (podman exit 125)`,
      );
    }
    if (info.code !== null && info.code >= 125 && info.code <= 127) {
      return new PodsockError(
        'PODSOCK_ERR_PODMAN',
        `Failed to start container ${q(cfg.containerName)}: podman exited with ${info.code} (see podman's message above)`,
        { exitCode: info.code },
      );
    }
    const how = exitText(info);
    return new PodsockError(
      'PODSOCK_ERR_CONTAINER_EXITED',
      `Container ${q(cfg.containerName)} exited with ${how} before it was ready`,
      { exitCode: info.code !== null && info.code > 0 && info.code < 256 ? info.code : 1 },
    );
  }

  /**
   * podman stop (by cid, else by name), then wait, bounded, for what watches the container: the
   * `podman run` child while it runs, then (detached) the container's conmon.
   */
  private async stopAndReap(run: RunningContainer, cid: string | null, why: string): Promise<void> {
    const { cfg } = this.o;
    this.log.debug({ why }, `Stopping container ${q(cfg.containerName)}`);
    try {
      await stopContainer(this.podman(), { cid, name: cfg.containerName }, cfg.stopTimeoutMs / 1000);
    } catch (err) {
      this.log.warn({ err }, 'podman stop failed, killing podman run (or conmon)');
    }
    const gone = await Promise.race([
      run.exited.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 5000).unref()),
    ]);
    if (!gone) {
      run.kill('SIGKILL');
      await run.exited;
      // podman run (or conmon) died while the container may have been created in that instant: remove it by name.
      await stopContainer(this.podman(), { cid: null, name: cfg.containerName }, 0).catch(() => undefined);
    }
  }
}

/** "code 3", "signal SIGKILL", or why neither is known. */
function exitText(info: ExitInfo): string {
  if (info.code !== null) return `code ${info.code}`;
  if (info.signal !== null) return `signal ${info.signal}`;
  return `an unknown status (${info.lost ?? 'no status reported'})`;
}

function readyLabel(cfg: ServiceConfig): string {
  return cfg.ready.kind === 'http' ? `http:${cfg.ready.path}` : cfg.ready.kind;
}
