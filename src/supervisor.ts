/**
 * The supervisor owns one service's lifecycle and is the only place that wires the parts together:
 * starting → ready → (idle | stop | container exit) → stopped.
 *
 * It runs activations (activation/activation.ts: start, readiness, serving and stopping one container).
 * Under systemd one activation is the whole life of the process: its end gives the exit status, and a
 * failure is remembered so that a crash loop backs off (start-failures.ts). Standalone (`--listen`) the
 * supervisor waits for the next connection and starts again. It never touches the process: the CLI turns
 * what `run()` and `requestStop()` return into an exit.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from './log.js';
import { PodsockError, isPodsockError, q } from './errors.js';
import { Activation, type ActivationOutcome } from './activation/activation.js';
import type { ServiceSetup, StartedPrestart } from './activation/setup.js';
import { containerFailedError } from './activation/failures.js';
import { removePlan } from './runtime/prestart.js';
import { killContainerNow, type Podman } from './runtime/podman.js';
import { backoffFor, clearFailures, HEALTHY_AFTER_MS, recordFailure } from './start-failures.js';
import type { StatusRecorder } from './status/status-recorder.js';

/** What podsock tells systemd (a Notifier from sd/notify-client, or a no-op). */
export interface SystemdNotifier {
  notify(fields: Record<string, string> | Array<[string, string]>): void;
}

export interface SupervisorOptions extends ServiceSetup {
  systemd: SystemdNotifier;
  /**
   * The podman to run, or a function that finds it (resolvePodman), called at the first start: podman
   * missing is then a failed start like any other and backs off, instead of crash-looping the socket.
   */
  podman: Podman | (() => Podman);
  /** true with --listen: keep listening after an idle stop and start again on the next connection. */
  standalone: boolean;
  /** Where consecutive failures are remembered across activations (start-failures.ts). */
  failureFile: string;
  /** podman as podsock-launch started it before podsock (runtime/prestart.ts), for the first start only. */
  prestart?: StartedPrestart | null;
  /** The service's status file (status/status-recorder.ts), or null. */
  status?: StatusRecorder | null;
  /** When podsock started (ms since the epoch): under systemd, the first activation's cold start counts from then. */
  startedAt?: number;
}

const STOPPED = { kind: 'stopped' } as const;

/** What the caller of requestStop() does: nothing (a graceful stop has begun), or exit at once with `code`. */
export type StopRequest = { kind: 'graceful' } | { kind: 'exit'; code: number };

/** Runs the service; `run()` resolves with the process exit status. */
export class Supervisor {
  private readonly o: SupervisorOptions;
  private readonly log: Logger;
  private stopRequested = false;
  private readonly stopController = new AbortController();
  private stopCount = 0;
  /** The activation under way, if any. */
  private current: Activation | null = null;
  /** When the container became ready (null before). */
  private readySince: number | null = null;
  private lastFailure = '';
  private resolvedPodman: Podman | null = null;
  private prestart: StartedPrestart | null;
  private activations = 0;

  constructor(o: SupervisorOptions) {
    this.o = o;
    this.log = o.log;
    this.prestart = o.prestart ?? null;
  }

  private podman(): Podman {
    this.resolvedPodman ??= typeof this.o.podman === 'function' ? this.o.podman() : this.o.podman;
    return this.resolvedPodman;
  }

  /**
   * First call: graceful stop (STOPPING=1, podman stop); `run()` resolves when it is done. Second call:
   * the container is killed now and the caller exits at once with the returned code.
   */
  requestStop(reason: string): StopRequest {
    this.stopCount += 1;
    if (this.stopCount === 1) {
      this.log.info({ reason }, 'Stopping');
      this.stopRequested = true;
      this.stopController.abort(new PodsockError('PODSOCK_ERR_INTERNAL', `stop requested (${reason})`));
      return { kind: 'graceful' };
    }
    this.log.warn({ reason }, 'Second stop request: stopping at once');
    // Kill the container now (a stop with no grace period also ends one that a killed `podman stop`
    // left half-stopped); the unit's ExecStopPost= removes whatever remains after the exit.
    const container = this.current?.container ?? null;
    if (container !== null || this.resolvedPodman !== null) {
      try {
        killContainerNow(this.podman(), this.o.cfg.containerName);
      } catch (err) {
        this.log.warn({ err }, 'Cannot kill the container, ignoring');
      }
    }
    container?.kill('SIGKILL');
    return { kind: 'exit', code: 0 };
  }

  /** Tell systemd; a failure to do so is logged and ignored. */
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
        const cleared = code === 0 || (this.readySince !== null && Date.now() - this.readySince >= HEALTHY_AFTER_MS);
        if (cleared) clearFailures(this.o.failureFile);
        // A plan that ended in a failure is not repeated before podsock has looked at the configuration.
        if (code !== 0 && this.o.plan) removePlan(this.o.plan.path);
        const failures = code !== 0 && !this.stopRequested ? recordFailure(this.o.failureFile, Date.now()) : null;
        this.o.status?.ended(code === 0 ? null : this.lastFailure, failures ?? (cleared ? 0 : null));
        if (failures !== null) await this.backOff(failures);
        return code;
      }
      for (;;) {
        await frontend.start(); // again after an idle stop: accept (proxy) or watch (handover) anew
        this.notify([['STATUS', `Waiting for a connection on ${this.o.listeners.length} socket(s)`]]);
        this.log.info('Waiting for the first connection');
        this.o.status?.waiting();
        const woke = await frontend.waitForConnection(this.stopController.signal);
        const outcome = woke && !this.stopRequested ? await this.activate() : STOPPED;
        if (outcome.kind === 'stopped' || this.stopRequested) {
          this.o.status?.ended(null, null);
          return 0;
        }
        if (outcome.kind === 'exited' && outcome.info.code !== 0) {
          this.log.error({ code: outcome.info.code, signal: outcome.info.signal }, `Container ${q(this.o.cfg.containerName)} failed; starting it again on the next connection`);
        }
      }
    } catch (err) {
      const code = this.fail(err);
      this.o.status?.ended(this.lastFailure, null);
      return code;
    } finally {
      await frontend.close();
    }
  }

  /** Run one activation; the prestarted podman, if any, goes to the first. */
  private async activate(): Promise<ActivationOutcome> {
    const activation = new Activation(this.o, {
      podman: () => this.podman(),
      notify: (fields) => this.notify(fields),
      stopSignal: this.stopController.signal,
      prestart: this.prestart,
      ...(this.o.standalone || this.activations > 0 || this.o.startedAt === undefined ? {} : { waitingSince: this.o.startedAt }),
    });
    this.activations += 1;
    this.prestart = null;
    this.current = activation;
    try {
      return await activation.run();
    } finally {
      this.readySince = activation.readySince ?? this.readySince;
      this.current = null;
    }
  }

  private async activationToExit(): Promise<number> {
    const outcome = await this.activate();
    switch (outcome.kind) {
      case 'idle':
      case 'stopped':
        return 0;
      case 'exited': {
        if (outcome.info.code === 0) {
          this.log.info(`Container ${q(this.o.cfg.containerName)} exited with status 0`);
          return 0;
        }
        return this.fail(containerFailedError(this.o.cfg, outcome.info));
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

  /**
   * After a failure, before exiting: wait longer the more activations failed in a row, so that a
   * crash loop cannot trip the socket's trigger limit (start-failures.ts). `n` is the consecutive count
   * recordFailure() returned. A stop request ends the wait.
   */
  private async backOff(n: number): Promise<void> {
    const ms = backoffFor(n);
    if (ms === 0) return;
    const text = `Failed ${n} times in a row; waiting ${Math.round(ms / 1000)} s before exiting to avoid a restart storm. Last: ${this.lastFailure}`;
    this.log.warn(text);
    this.notify([['STATUS', text]]);
    await sleep(ms, undefined, { signal: this.stopController.signal }).catch(() => undefined);
  }
}
