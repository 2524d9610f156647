/**
 * A private copy of the podsock build under test, so that a rebuild during a run (`npm run build`
 * rewrites dist/, `node-gyp rebuild` deletes build/ first) cannot break samples half-way, and every
 * sample of a run measures the same code.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from './host.js';

/** Where the native addon lives, relative to the repository (binding.gyp's target, loaded from dist/). */
const ADDON = join('build', 'Release', 'podsock_native.node');
/** podsock-launch (native/launch.c), built beside the addon; generated units run podsock through it. */
const LAUNCHER = join('build', 'Release', 'podsock-launch');

/** The podsock-launch of the build `entry` (dist/bin/podsock.cjs) belongs to, or null when it was not built. */
export function launcherFor(entry: string): string | null {
  const launcher = join(entry, '..', '..', '..', LAUNCHER);
  return existsSync(launcher) ? launcher : null;
}

/**
 * Copy dist/ and the native addon into a new directory below `.test-host/` (inside the repository,
 * so that the copy still resolves node_modules) and return the copy's directory and `entry` within
 * it. An `entry` outside the repository's dist/ is used as it is (dir null). The caller removes the
 * directory. Throws when the build is incomplete.
 */
export function snapshotBuild(entry: string): { dir: string | null; entry: string } {
  const rel = relative(repoRoot, entry);
  if (!rel.startsWith(`dist/`)) return { dir: null, entry };
  if (!existsSync(entry)) throw new Error(`'${entry}' is missing: build first (npm run build)`);
  if (!existsSync(join(repoRoot, ADDON))) throw new Error(`'${join(repoRoot, ADDON)}' is missing: build first (npm run build, or npx node-gyp rebuild)`);
  mkdirSync(join(repoRoot, '.test-host'), { recursive: true });
  const dir = mkdtempSync(join(repoRoot, '.test-host', 'cold-start-build-'));
  cpSync(join(repoRoot, 'dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(repoRoot, ADDON), join(dir, ADDON));
  if (existsSync(join(repoRoot, LAUNCHER))) cpSync(join(repoRoot, LAUNCHER), join(dir, LAUNCHER));
  return { dir, entry: join(dir, rel) };
}
