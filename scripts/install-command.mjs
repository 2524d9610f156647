// Makes dist/bin/podsock, the command `npm install` links as `podsock` (package.json "bin"): a copy of
// podsock-launch (native/launch.c), which, named podsock, runs `node dist/bin/podsock.cjs ARGS...` and
// for `run` first starts podman from the last activation's plan. So `ExecStart=podsock run NAME`, as
// users write it and as units/podsock@.service has it, takes the same fast path as generated units.
//
// Run after the native build (package.json "install", on every machine that installs podsock, so the
// copy is always built for that machine) and after bundling (scripts/bundle.mjs). The copy is written
// beside the target and renamed over it: a running podsock is never overwritten in place.
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const launcher = join(root, 'build', 'Release', 'podsock-launch');
const target = join(root, 'dist', 'bin', 'podsock');

if (!existsSync(launcher)) {
  process.stderr.write(`install-command: ${launcher} is missing: the native build failed or has not run (npm run install)\n`);
  process.exit(1);
}
mkdirSync(dirname(target), { recursive: true });
const tmp = `${target}.${process.pid}.tmp`;
try {
  copyFileSync(launcher, tmp);
  chmodSync(tmp, 0o755);
  renameSync(tmp, target);
} finally {
  rmSync(tmp, { force: true });
}
