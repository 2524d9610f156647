/**
 * The podman image and container commands `podsock auto-update` needs, through the one podman driver
 * (runtime/podman.ts podmanCommand). Throw PodsockError 'PODSOCK_ERR_PODMAN' naming the command and
 * podman's own message when podman fails; never log.
 */
import { PodsockError, q } from '../errors.js';
import { podmanCommand, type Podman } from '../runtime/podman.js';

async function run(p: Podman, args: string[], what: string): Promise<string> {
  const r = await podmanCommand(p, args);
  if (r.exitCode !== 0) throw new PodsockError('PODSOCK_ERR_PODMAN', `${what}: ${r.stderr.trim() || r.stdout.trim()} (podman exit ${r.exitCode})`);
  return r.stdout.trim();
}

/** The id of the image `ref` names in local storage, or null when it names none. */
export async function localImageId(p: Podman, ref: string): Promise<string | null> {
  const r = await podmanCommand(p, ['image', 'inspect', '--format', '{{.Id}}', ref]);
  const id = r.stdout.trim();
  return r.exitCode === 0 && /^[0-9a-f]{64}$/.test(id) ? id : null;
}

/** `podman pull REF` (podman's registries.conf and authentication apply); the id now named `ref`. */
export async function pullImage(p: Podman, ref: string): Promise<string> {
  await run(p, ['pull', '--quiet', ref], `Cannot pull ${q(ref)}`);
  const id = await localImageId(p, ref);
  if (id === null) throw new PodsockError('PODSOCK_ERR_PODMAN', `Pulled ${q(ref)}, but podman has no image of that name`);
  return id;
}

/** Point `ref` at the image `id` (`podman tag`): the tag moves from whatever image it named. */
export async function tagImage(p: Podman, id: string, ref: string): Promise<void> {
  await run(p, ['tag', id, ref], `Cannot tag image ${q(id.slice(0, 12))} as ${q(ref)}`);
}

/**
 * Remove the image `id` when nothing names or uses it any more (`podman rmi` without --force refuses an
 * image a container uses or another name still holds). Whether it went.
 */
export async function removeUnnamedImage(p: Podman, id: string): Promise<boolean> {
  const names = await podmanCommand(p, ['image', 'inspect', '--format', '{{len .RepoTags}}', id]);
  if (names.exitCode !== 0 || names.stdout.trim() !== '0') return false;
  return (await podmanCommand(p, ['rmi', id])).exitCode === 0;
}

/** Whether a container named `name` exists, in any state (`podman container exists`). */
export async function containerExists(p: Podman, name: string): Promise<boolean> {
  const r = await podmanCommand(p, ['container', 'exists', name]);
  if (r.exitCode === 0) return true;
  if (r.exitCode === 1) return false;
  throw new PodsockError('PODSOCK_ERR_PODMAN', `Cannot tell whether container ${q(name)} exists: ${r.stderr.trim()} (podman exit ${r.exitCode})`);
}
