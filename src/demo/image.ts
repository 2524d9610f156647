/**
 * The demo's image, localhost/podsock-demo:latest, built locally (no registry): a root directory
 * holding the host's static busybox and one page, imported with `podman import` (podman-import(1)).
 * `busybox httpd` serves the page on port 8080 in the container. The image carries a hash of its
 * inputs in a label, so it is rebuilt only when busybox, the page or the command change.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants as fsConstants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { PodsockError, q } from '../errors.js';
import { podmanCommand, type Podman } from '../runtime/podman.js';
import { elfLinkage } from './elf.js';

/** The demo image's name; `localhost/` so podman never looks it up in a registry. */
export const DEMO_IMAGE = 'localhost/podsock-demo:latest';
/** The page the demo container serves (its first line is what the demo prints). */
export const DEMO_PAGE = 'hello from a socket-activated container\n';
/** The port busybox httpd listens on inside the container. */
export const DEMO_CONTAINER_PORT = 8080;
/** The label holding demoImageHash() of the inputs the image was built from. */
export const DEMO_HASH_LABEL = 'io.podsock.demo-hash';
/**
 * busybox httpd as PID 1 would ignore SIGTERM (PID 1 has no default signal actions), so every idle
 * stop would wait out podman's stop timeout and end in SIGKILL. A shell that traps TERM exits at once.
 */
export const DEMO_CMD: readonly string[] = ['/bin/busybox', 'sh', '-c', `trap 'exit 0' TERM; /bin/busybox httpd -f -p ${DEMO_CONTAINER_PORT} -h /www & wait`];

/** First `busybox` on PATH (then /bin/busybox), or null. */
export function findBusybox(env: NodeJS.ProcessEnv): string | null {
  const dirs = (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).filter((d) => d !== '');
  for (const c of [...dirs.map((d) => join(d, 'busybox')), '/bin/busybox']) {
    try {
      accessSync(c, fsConstants.X_OK);
      return c;
    } catch {
      // next candidate
    }
  }
  return null;
}

/** The label value for an image built from this busybox binary: 16 hex digits of a sha256. Pure. */
export function demoImageHash(busybox: Uint8Array): string {
  const h = createHash('sha256');
  h.update(`podsock-demo 1\n${JSON.stringify(DEMO_CMD)}\n${DEMO_PAGE}\n`);
  h.update(busybox);
  return h.digest('hex').slice(0, 16);
}

/** Read `path` and check it can run alone in an empty image; PODSOCK_ERR_DEMO_SETUP otherwise. */
export function readStaticBusybox(path: string): Buffer {
  let bin: Buffer;
  try {
    bin = readFileSync(path);
  } catch (err) {
    throw new PodsockError('PODSOCK_ERR_DEMO_SETUP', `Cannot read busybox at ${q(path)}: ${(err as Error).message}`, { cause: err });
  }
  const kind = elfLinkage(bin);
  if (kind !== 'static') {
    throw new PodsockError(
      'PODSOCK_ERR_DEMO_SETUP',
      `${q(path)} is ${kind === 'dynamic' ? 'dynamically linked' : 'not an ELF executable'}; the demo image needs a static busybox: install the busybox-static package (apt-get install busybox-static)`,
    );
  }
  return bin;
}

/** What ensureDemoImage() did. */
export interface DemoImage {
  image: string;
  hash: string;
  /** Whether this call built it (false: an image with the same hash was there). */
  built: boolean;
}

/**
 * Make sure DEMO_IMAGE exists and was built from `busyboxPath`: reuse it when its label matches,
 * else build it (and remove the image it replaces, unless a container still uses that). Podman
 * failures are PODSOCK_ERR_PODMAN with podman's message.
 */
export async function ensureDemoImage(podman: Podman, busyboxPath: string, signal?: AbortSignal): Promise<DemoImage> {
  const bin = readStaticBusybox(busyboxPath);
  const hash = demoImageHash(bin);
  const labelOf = async (): Promise<string | null> => {
    const r = await podmanCommand(podman, ['image', 'inspect', '--format', `{{index .Labels "${DEMO_HASH_LABEL}"}}`, DEMO_IMAGE], signal);
    return r.exitCode === 0 ? r.stdout.trim() : null;
  };
  const current = await labelOf();
  if (current === hash) return { image: DEMO_IMAGE, hash, built: false };
  const oldId = current === null ? null : (await podmanCommand(podman, ['image', 'inspect', '--format', '{{.Id}}', DEMO_IMAGE], signal)).stdout.trim();

  const root = mkdtempSync(join(tmpdir(), 'podsock-demo-'));
  try {
    mkdirSync(join(root, 'bin'));
    mkdirSync(join(root, 'www'));
    writeFileSync(join(root, 'bin', 'busybox'), bin, { mode: 0o755 });
    writeFileSync(join(root, 'www', 'index.html'), DEMO_PAGE, { mode: 0o644 });
    // execa is loaded here, on use: the demo is its only user and `podsock run` should not pay for it.
    const { execa } = await import('execa');
    const tar = execa('tar', ['-C', root, '--owner=0', '--group=0', '-c', '.'], { reject: false, cancelSignal: signal });
    const imp = tar.pipe(
      podman.binary,
      ['import', '--quiet', '--change', `CMD ${JSON.stringify(DEMO_CMD)}`, '--change', `LABEL ${DEMO_HASH_LABEL}=${hash}`, '-', DEMO_IMAGE],
      { env: podman.env, extendEnv: false, reject: false, timeout: 120_000 },
    );
    let r: { exitCode?: number | undefined; stderr: unknown };
    try {
      r = await imp;
    } catch (err) {
      throw new PodsockError('PODSOCK_ERR_PODMAN', `Failed to build the demo image ${q(DEMO_IMAGE)}: ${(err as Error).message}`, { cause: err });
    }
    if (r.exitCode !== 0) {
      throw new PodsockError('PODSOCK_ERR_PODMAN', `Failed to build the demo image ${q(DEMO_IMAGE)}: ${String(r.stderr).trim() || `podman import exited ${r.exitCode}`}`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const built = await labelOf();
  if (built !== hash) {
    throw new PodsockError('PODSOCK_ERR_PODMAN', `The demo image ${q(DEMO_IMAGE)} has label ${q(built)} after the build, expected ${q(hash)}`);
  }
  if (oldId !== null && oldId !== '') {
    // The previous build is untagged now; best effort, a container may still use it.
    await podmanCommand(podman, ['rmi', oldId], signal).catch(() => undefined);
  }
  return { image: DEMO_IMAGE, hash, built: true };
}
