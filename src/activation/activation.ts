/**
 * One activation: start the container (handing over the fds, or publishing the backends or reaching
 * them inside the container's network namespace), race its readiness against its exit, StartTimeout
 * and a stop request; tell systemd READY=1 and a status line from podsock's own pid (the unit's main
 * pid stays podsock); relay the container's allowed notify messages; drive the idle timer from the
 * frontend's connection count; and stop the container (by cid) before returning.
 *
 * The steps, each a method, in this order:
 *
 *     notifySockets → launchOrAdopt → awaitReadiness → serve → dispose
 *
 * awaitReadiness returns one tagged result; serve runs only after `ready`, the other results end the
 * activation (after stopping the container). dispose runs whatever happened before. Every timer and
 * listener hangs off one AbortController, which a stop request aborts and dispose aborts at the end.
 */
import { once } from 'node:events';
import { chmodSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatTimespan } from '../config/timespan.js';
import { q } from '../errors.js';
import { IdleTimer } from '../idle/idle-timer.js';
import type { Logger } from '../log.js';
import { QuietRelease } from '../memory/quiet-release.js';
import { abortable } from '../readiness/backoff.js';
import { tcpGraceFor } from '../readiness/tcp-grace.js';
import { waitReady } from '../readiness/wait-ready.js';
import { podmanRunCommand, shellQuote, type RunCommand } from '../runtime/podman-argv.js';
import {
  adoptRun,
  detachAvailable,
  discardPrestart,
  podmanCommand,
  startRun,
  waitForCidfile,
  type ExitInfo,
  type Podman,
  type RunningContainer,
  type RunWatch,
} from '../runtime/podman.js';
import { commandDigest } from '../runtime/prestart.js';
import { privateDir, RUNTIME_DIR_LEVELS } from '../private-files.js';
import { Backends } from './backends.js';
import { ContainerMessages } from './container-messages.js';
import { exitedBeforeReady, readyTimeoutError } from './failures.js';
import { closeNotifySockets, openNotifySockets, sweepLeftoverNotifyDirs, type NotifySockets } from './notify-sockets.js';
import { leavePlan } from './plan.js';
import { removeRunFiles, runFilePaths, runFilesFor, type RunFiles } from './run-files.js';
import type { ActivationLinks, ServiceSetup, StartedPrestart } from './setup.js';
import { StatusLine } from './status-line.js';
import { stopAndReap } from './stop.js';
import { Watchdog } from './watchdog.js';

/** How an activation that did not fail ended. */
export type ActivationOutcome = { kind: 'idle' } | { kind: 'stopped' } | { kind: 'exited'; info: ExitInfo };

/** Whichever came first while the container started; `failed`: podsock's own failure (the backend cannot be reached safely). */
export type Readiness =
  | { kind: 'ready' }
  | { kind: 'exited'; info: ExitInfo }
  | { kind: 'timeout' }
  | { kind: 'stopped' }
  | { kind: 'failed'; error: unknown };

/** Added to StartTimeout= + StopTimeout= in EXTEND_TIMEOUT_USEC=, for podsock's own work around them. */
const EXTEND_MARGIN_MS = 10_000;
/** Time without connections after which memory touched by serving is given back again. */
const QUIET_RELEASE_MS = 5_000;

const STOPPED = { kind: 'stopped' } as const;

/** The podman command this activation started or adopted. */
interface Launched {
  podman: Podman;
  cmd: RunCommand;
  env: Record<string, string>;
  fds: number[];
  container: RunningContainer;
}

/** One start → ready → serve → stop cycle; `run()` once. */
export class Activation {
  /** When the container became ready (null before). */
  readySince: number | null = null;
  private readonly s: ServiceSetup;
  private readonly l: ActivationLinks;
  private readonly log: Logger;
  private readonly started = Date.now();
  private readonly ac = new AbortController();
  /** Resolves when `ac` aborts before the end: a stop request. */
  private readonly stopped: Promise<typeof STOPPED>;
  private readonly files: RunFiles;
  private readonly direct: boolean;
  private readonly watch: RunWatch;
  private readonly backends: Backends;
  private readonly status = new StatusLine();
  private readonly watchdog: Watchdog;
  private readonly messages: ContainerMessages;
  /** The container said READY=1. */
  private readonly notified: Promise<void>;
  private resolveNotified!: () => void;
  /** podman's own READY=1 (--sdnotify=conmon): the container is running. */
  private readonly podmanRunning: Promise<void>;
  private resolvePodmanRunning!: () => void;
  private prestart: StartedPrestart | null;
  private sockets: NotifySockets | null = null;
  private launched: Launched | null = null;
  private cid: string | null = null;
  private runningCid: Promise<string> | null = null;
  private idle: IdleTimer | null = null;
  private quiet: QuietRelease | null = null;

  constructor(s: ServiceSetup, l: ActivationLinks) {
    this.s = s;
    this.l = l;
    this.log = s.log;
    this.prestart = l.prestart;
    const { cfg } = s;
    // podman detached (-d): no podman process stays while the container runs; conmon is watched instead.
    const detached = detachAvailable();
    this.direct = cfg.mode === 'proxy' && s.directBackend && detached;
    this.files = runFilesFor(s.runtimeDir, cfg.name, { detached, direct: this.direct });
    const { conmonPidfile } = this.files;
    this.watch = conmonPidfile === null ? { detached: false } : { detached: true, conmonPidfile };
    this.backends = new Backends({ cfg, direct: this.direct, files: this.files, hostPorts: s.backendHostPorts, udpHostPorts: s.backendUdpHostPorts ?? [], uid: s.uid ?? 0 });
    this.stopped = once(this.ac.signal, 'abort').then(() => STOPPED);
    this.notified = new Promise((resolve) => (this.resolveNotified = resolve));
    this.podmanRunning = new Promise((resolve) => (this.resolvePodmanRunning = resolve));
    this.watchdog = new Watchdog({ intervalMs: s.watchdog?.intervalMs ?? null, notify: l.notify, log: s.log });
    this.messages = new ContainerMessages({ log: s.log, notify: l.notify, status: this.status, watchdog: this.watchdog, onReady: this.resolveNotified });
  }

  /** The container while it runs (started or adopted), for a stop that cannot wait. */
  get container(): RunningContainer | null {
    return this.launched?.container ?? null;
  }

  /** The whole cycle. Throws on start failures (after cleaning up). */
  async run(): Promise<ActivationOutcome> {
    this.l.stopSignal.addEventListener('abort', this.onStop, { once: true });
    // The runtime directory is podsock's alone: it keeps the notify directory below it private on the host.
    privateDir(this.s.runtimeDir, RUNTIME_DIR_LEVELS);
    // The cidfile and pidfile go before a start and after it. A podman podsock-launch started may have
    // written them already (it removed the old ones itself).
    if (this.prestart === null) removeRunFiles(this.files);
    this.s.status?.starting();
    try {
      await this.notifySockets();
      const launched = await this.launchOrAdopt();
      const readiness = await this.awaitReadiness(launched.container);
      switch (readiness.kind) {
        case 'ready':
          return await this.serve(launched);
        case 'stopped':
          await this.stopContainer('Stop requested while starting');
          return STOPPED;
        case 'failed':
          this.ac.abort(new Error('start failed'));
          await this.stopContainer('start failed');
          throw readiness.error;
        case 'timeout':
          this.ac.abort(new Error('start timeout'));
          await this.stopContainer('StartTimeout passed');
          throw readyTimeoutError(this.s.cfg);
        case 'exited':
          this.ac.abort(new Error('container exited'));
          throw await exitedBeforeReady(launched.podman, this.s.cfg, readiness.info);
      }
    } finally {
      await this.dispose();
    }
  }

  private readonly onStop = (): void => this.ac.abort(this.l.stopSignal.reason);

  private sendStatus(own: string): void {
    this.l.notify([['STATUS', this.status.update(own)]]);
  }

  /** Step 1: the container's notify socket and podman's, new or taken over from podsock-launch. */
  private async notifySockets(): Promise<void> {
    const open = (adopt: StartedPrestart['notify'] | null): Promise<NotifySockets> =>
      openNotifySockets({
        parentDir: this.s.runtimeDir,
        adopt,
        onContainerMessage: this.messages.onMessage,
        onPodmanReady: () => {
          this.log.debug({ ms: Date.now() - this.started }, `podman reports container ${q(this.s.cfg.containerName)} running`);
          this.resolvePodmanRunning();
        },
        log: this.log,
      });
    const pre = this.prestart;
    if (pre !== null) {
      try {
        this.sockets = await open(pre.notify);
      } catch (err) {
        this.log.warn({ err }, 'Cannot take over the notify sockets podsock-launch made; starting podman afresh');
        await discardPrestart(pre);
        this.prestart = null;
        removeRunFiles(this.files);
      }
    }
    this.sockets ??= await open(null);
    // Traversable (not listable) so that a container running as another uid reaches the 0777 socket
    // through its bind mount; on the host the 0700 runtime directory above keeps it private.
    chmodSync(this.sockets.container.dir, 0o711);
  }

  /** Step 2: adopt the podman podsock-launch started when it runs this very command, else start podman. */
  private async launchOrAdopt(): Promise<Launched> {
    const { cfg } = this.s;
    const sockets = this.sockets as NotifySockets;
    const cmd = podmanRunCommand(cfg, {
      cidfile: this.files.cidfile,
      notifyDir: sockets.container.dir,
      notifySocketName: sockets.container.socketName,
      podmanNotifySocket: sockets.podman.socketPath,
      handover: cfg.mode === 'handover' ? { names: this.s.listeners.map((l) => l.name) } : null,
      publish: this.backends.publish,
      conmonPidfile: this.files.conmonPidfile,
      pidfile: this.files.pidfile,
      unit: this.s.unit,
      selinux: this.s.selinux,
    });
    this.log.debug({ argv: shellQuote(['podman', ...cmd.args]) }, 'Starting podman');
    this.sendStatus(`Starting container ${q(cfg.containerName)} from ${q(cfg.image)}`);
    // Keep systemd from killing a slow first start (image pull, slow init) that is within StartTimeout:
    // EXTEND_TIMEOUT_USEC= in sd_notify(3), TimeoutStartSec= in systemd.service(5).
    this.l.notify([['EXTEND_TIMEOUT_USEC', String((cfg.startTimeoutMs + cfg.stopTimeoutMs + EXTEND_MARGIN_MS) * 1000)]]);
    const fds = cfg.mode === 'handover' ? this.s.listeners.map((l) => l.fd) : [];
    const podman = this.l.podman();
    const env = { ...podman.env, ...cmd.env };
    let container: RunningContainer | null = null;
    const given = this.prestart;
    if (given !== null) {
      this.prestart = null; // adopted or stopped below, either way no longer waiting for an owner
      if (commandDigest(podman.binary, [podman.binary, ...cmd.args], env) === given.digest) {
        container = adoptRun(given.pid, this.watch);
        if (container !== null) this.log.debug({ pid: given.pid }, 'podman was started by podsock-launch from the last plan; adopted it');
      } else {
        this.log.info({ pid: given.pid }, 'podsock-launch started podman from an out-of-date plan; stopping it and starting podman afresh');
        await discardPrestart(given);
      }
      if (container === null) removeRunFiles(this.files);
    }
    container ??= startRun(podman, cmd, fds, this.watch);
    this.launched = { podman, cmd, env, fds, container };
    this.watchdog.start();
    return this.launched;
  }

  /**
   * Once, for every strategy that needs it: the container's id (cidfile) once podman says the container
   * runs; by then its backends can be reached (or refused).
   */
  private readonly running = (): Promise<string> =>
    (this.runningCid ??= (async () => {
      const { signal } = this.ac;
      const id = await waitForCidfile(this.files.cidfile, signal);
      if (id === null) throw signal.reason as Error;
      this.cid = id;
      await abortable(this.podmanRunning, signal);
      this.backends.reach();
      return id;
    })());

  /** Step 3: readiness (Ready=) against the container's exit, the StartTimeout deadline and a stop request. */
  private async awaitReadiness(container: RunningContainer): Promise<Readiness> {
    const { cfg } = this.s;
    const { signal } = this.ac;
    const ready = waitReady(cfg.ready, {
      signal,
      running: this.running,
      notified: this.notified,
      backend: () => this.backends.list()[0] ?? null,
      // Inside the namespace a connect reaches the app itself: refused until it listens, no forwarder.
      tcpGraceMs: this.direct ? 0 : tcpGraceFor({ rootless: this.s.rootless, podmanOptions: cfg.podmanOptions }),
      podman: (args, sig) => podmanCommand(this.l.podman(), args, sig),
    })
      .then((): Readiness => {
        // Ready=notify never waited for running(): the container runs once it said READY=1.
        this.backends.reach();
        return { kind: 'ready' };
      })
      // Rejected when the signal aborts (a stop, while this race is undecided) or when podsock cannot
      // reach the backend safely, which ends the start like a timeout.
      .catch((error: unknown): Readiness => (signal.aborted ? STOPPED : { kind: 'failed', error }));
    // The deadline's timer goes when the signal aborts: by a stop, or at dispose once decided.
    const deadline = sleep(cfg.startTimeoutMs, undefined, { signal }).then(
      (): Readiness => ({ kind: 'timeout' }),
      (): Readiness => STOPPED,
    );
    const exited = container.exited.then((info): Readiness => ({ kind: 'exited', info }));
    return Promise.race([ready, deadline, this.stopped, exited]);
  }

  /** Step 4: tell systemd, serve until idle, a stop request or the container's own exit, then stop it. */
  private async serve(launched: Launched): Promise<ActivationOutcome> {
    const { cfg, frontend } = this.s;
    this.announceReady(launched);
    if (this.sockets !== null) sweepLeftoverNotifyDirs(this.s.runtimeDir, this.sockets, this.log);
    // Serving: race idle, stop and the container's own exit.
    let fireIdle!: () => void;
    const idleFired = new Promise<{ kind: 'idle' }>((resolve) => (fireIdle = () => resolve({ kind: 'idle' })));
    const idle = new IdleTimer({ timeoutMs: cfg.idleTimeoutMs, onIdle: () => fireIdle() });
    this.idle = idle;
    const release = this.s.release;
    const quiet = release !== undefined ? new QuietRelease({ quietMs: QUIET_RELEASE_MS, release }) : null;
    this.quiet = quiet;
    const status = this.s.status ?? null;
    frontend.onActivity((n) => {
      idle.activity(n);
      quiet?.activity(n);
      status?.activity(n);
    });
    idle.activity(frontend.activeCount());
    quiet?.activity(frontend.activeCount());
    const since = this.l.waitingSince ?? this.started;
    status?.ready((this.readySince ?? since) - since, frontend.activeCount());
    const exited = launched.container.exited.then((info) => ({ kind: 'exited', info }) as const);
    const next = await Promise.race([idleFired, this.stopped, exited]);
    if (next.kind === 'exited') {
      frontend.notReady();
      return next;
    }
    this.messages.phase = 'stopping';
    if (next.kind === 'idle') {
      this.log.info(`Idle for ${formatTimespan(cfg.idleTimeoutMs ?? 0)}: stopping container ${q(cfg.containerName)}`);
      // Stop accepting before deciding to exit: whatever arrives now waits in the kernel backlog for
      // the next activation (systemd's socket, or our own listener in standalone mode).
      await frontend.stopAccepting();
      // A connection accepted in the same instant is served to its end (bounded) before the container goes.
      if (frontend.activeCount() > 0) await frontend.drain(cfg.stopTimeoutMs);
      this.l.notify([['STOPPING', '1']]);
      status?.stopping();
      this.sendStatus('Idle: stopping the container');
      await this.stopContainer('idle');
      frontend.notReady();
      return next;
    }
    this.l.notify([['STOPPING', '1']]);
    status?.stopping();
    this.sendStatus('Stopping the container');
    await frontend.stopAccepting();
    await this.stopContainer('stop requested');
    return STOPPED;
  }

  /** READY=1 with the status line, the frontend serves, and the plan for the next start is left. */
  private announceReady(launched: Launched): void {
    const { cfg, frontend } = this.s;
    this.messages.phase = 'ready';
    this.readySince = Date.now();
    const took = this.readySince - this.started;
    frontend.ready(this.backends.list());
    if (this.direct) this.log.debug(`Proxying to container ${q(cfg.containerName)} from inside its network namespace`);
    const idleText = cfg.idleTimeoutMs === null ? 'no idle timeout' : `idle timeout ${formatTimespan(cfg.idleTimeoutMs)}`;
    this.l.notify([
      ['READY', '1'],
      ['STATUS', this.status.update(`Serving: container ${q(cfg.containerName)} ready in ${took} ms (${cfg.mode} mode, ${idleText})`)],
    ]);
    this.log.info({ ms: took, container: cfg.containerName, mode: cfg.mode }, `Container ${q(cfg.containerName)} ready`);
    // Published ports are picked anew each time: only a command without them can be started early.
    const sockets = this.sockets;
    if (this.s.plan && this.backends.publish.length === 0 && sockets !== null) {
      leavePlan(
        this.s.plan,
        {
          runtimeDir: this.s.runtimeDir,
          unlinks: runFilePaths(this.files),
          notifyDirs: { container: sockets.container.dir, podman: sockets.podman.dir },
          fds: launched.fds.length,
          exe: launched.podman.binary,
          argv: [launched.podman.binary, ...launched.cmd.args],
          env: launched.env,
        },
        this.log,
      );
    }
  }

  private stopContainer(why: string): Promise<void> {
    const launched = this.launched as Launched;
    return stopAndReap({ podman: launched.podman, cfg: this.s.cfg, log: this.log, run: launched.container, cid: this.cid }, why);
  }

  /** Step 5: release everything this activation holds, whatever step it reached. */
  private async dispose(): Promise<void> {
    // A failure before the prestarted podman was adopted: it is podsock's child and must not outlive it.
    if (this.prestart !== null) await discardPrestart(this.prestart);
    this.l.stopSignal.removeEventListener('abort', this.onStop);
    this.ac.abort(new Error('activation over'));
    this.watchdog.close();
    this.idle?.close();
    this.quiet?.close();
    this.s.frontend.onActivity(null);
    closeNotifySockets(this.sockets);
    this.backends.close();
    removeRunFiles(this.files);
    this.launched = null;
  }
}
