/**
 * Updating one idle service that opted in with AutoUpdate= (podman-systemd.unit(5)), with the rule of
 * podman-auto-update(1): a new image that does not become ready within StartTimeout is rolled back to
 * the previous one, and the failure is reported.
 *
 * - A service that another `podsock auto-update` is updating (lock.ts) is skipped, with that run's pid.
 * - A service whose container exists is active: it is skipped, with the reason (`podman auto-update`
 *   updates running containers; a restart is not podsock's to make behind the unit's back).
 * - registry: `podman pull IMAGE`. When the image did not change there is nothing to do. Otherwise the
 *   tag goes back to the previous image at once, so that an activation while the new one is tried
 *   still starts the previous one (only the instant between the pull and the tag is open); the new
 *   image is tried by id, and only when it became ready does the tag move to it. A refused image is
 *   removed again (it came from the registry and can be pulled again), so nothing is left behind.
 * - local: the tag was moved by whoever built the new image; the previous image is the one this
 *   command last found or verified (record.ts). The first run only records the image. A refused image
 *   stays (it is the user's build), and the tag goes back to the previous image.
 * - --dry-run changes nothing: the tag stays, and for registry the image pulled to compare is removed
 *   again; the result is 'pending' when there is an update.
 */
import type { ServiceConfig } from '../config/load.js';
import { q } from '../errors.js';
import type { Podman } from '../runtime/podman.js';
import { containerExists, localImageId, pullImage, removeUnnamedImage, tagImage } from './images.js';
import type { UpdateLock } from './lock.js';
import { readRecord, writeRecord, type UpdateRecord, type UpdateStatus } from './record.js';
import type { TrialResult } from './trial.js';

/** One row of the report. */
export interface UpdateResult {
  service: string;
  image: string;
  policy: 'registry' | 'local' | null;
  status: UpdateStatus;
  message: string;
  /** The image the service is on now, or null when unknown. */
  imageId: string | null;
}

export interface UpdateDeps {
  podman: Podman;
  stateDir: string;
  dryRun: boolean;
  /** Takes the service's update locks (lock.ts lockForUpdate), held until its row is done. */
  lock: (cfg: ServiceConfig) => UpdateLock;
  /** Starts `imageId` once with the service's configuration (trial.ts tryImage). */
  tryImage: (cfg: ServiceConfig, imageId: string) => Promise<TrialResult>;
  now?: () => Date;
}

const short = (id: string | null): string => (id === null ? 'none' : id.slice(0, 12));

/** Update `cfg`'s service (see the module comment). Throws only for podman failures around the trial. */
export async function updateService(cfg: ServiceConfig, d: UpdateDeps): Promise<UpdateResult> {
  const policy = cfg.autoUpdate;
  const base = { service: cfg.name, image: cfg.image, policy };
  if (policy === null) return { ...base, status: 'skipped', message: 'AutoUpdate= is not set', imageId: null };
  const lock = d.lock(cfg);
  if ('busy' in lock) return { ...base, status: 'skipped', message: lock.busy, imageId: null };
  try {
    return await updateLocked(cfg, policy, d);
  } finally {
    lock.release();
  }
}

async function updateLocked(cfg: ServiceConfig, policy: 'registry' | 'local', d: UpdateDeps): Promise<UpdateResult> {
  const base = { service: cfg.name, image: cfg.image, policy };
  if (await containerExists(d.podman, cfg.containerName)) {
    return { ...base, status: 'skipped', message: `the service is active (container ${q(cfg.containerName)} exists); 'podman auto-update' updates running services`, imageId: null };
  }
  const record = (status: UpdateStatus, message: string, imageId: string | null, refusedImageId: string | null = null): UpdateResult => {
    if (!d.dryRun) {
      const r: UpdateRecord = { at: (d.now?.() ?? new Date()).toISOString(), image: cfg.image, policy, status, message, imageId, refusedImageId };
      writeRecord(d.stateDir, cfg.name, r);
    }
    return { ...base, status, message, imageId };
  };

  let previous: string | null;
  let candidate: string;
  if (policy === 'registry') {
    previous = await localImageId(d.podman, cfg.image);
    candidate = await pullImage(d.podman, cfg.image);
    if (candidate === previous) return record('not-updated', 'the registry has the same image', previous);
    if (previous !== null) await tagImage(d.podman, previous, cfg.image);
    if (d.dryRun) {
      if (previous !== null) await removeUnnamedImage(d.podman, candidate);
      return { ...base, status: 'pending', message: `image ${short(candidate)} would replace ${short(previous)}`, imageId: previous };
    }
  } else {
    const current = await localImageId(d.podman, cfg.image);
    if (current === null) return record('failed', `there is no local image ${q(cfg.image)}`, null);
    const last = readRecord(d.stateDir, cfg.name);
    if (last === null || last.imageId === null) return record('not-updated', `first look: image ${short(current)} recorded as the one in use`, current);
    if (current === last.imageId) return record('not-updated', 'the local image is the one in use', current);
    previous = last.imageId;
    candidate = current;
    if (d.dryRun) return { ...base, status: 'pending', message: `image ${short(candidate)} would replace ${short(previous)}`, imageId: previous };
  }

  // Whatever goes wrong in the trial, the previous image is restored below.
  const trial = await d.tryImage(cfg, candidate).catch((err: unknown): TrialResult => ({ ok: false, message: (err as Error)?.message ?? String(err) }));
  if (trial.ok) {
    await tagImage(d.podman, candidate, cfg.image);
    return record('updated', `image ${short(candidate)} replaced ${short(previous)} (ready in ${trial.readyMs} ms)`, candidate);
  }
  const why = `image ${short(candidate)} did not become ready: ${trial.message}`;
  if (previous === null) {
    if (policy === 'registry') await removeUnnamedImage(d.podman, candidate);
    return record('failed', `${why}; there is no previous image to return to`, null, candidate);
  }
  // registry: the tag already names the previous image; local: it goes back now.
  if (policy === 'local') {
    if ((await localImageId(d.podman, previous)) === null) return record('failed', `${why}; the previous image ${short(previous)} is gone, so it cannot be restored`, null, candidate);
    await tagImage(d.podman, previous, cfg.image);
  } else {
    await removeUnnamedImage(d.podman, candidate);
  }
  return record('rolled-back', `${why}; ${q(cfg.image)} names the previous image ${short(previous)} again`, previous, candidate);
}
