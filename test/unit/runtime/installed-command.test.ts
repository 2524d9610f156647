/**
 * The installed `podsock` command (dist/bin/podsock, a copy of podsock-launch made by
 * scripts/install-command.mjs): named podsock, it runs `node <its dir>/podsock.cjs ARGS...` with node
 * from PATH, through the launcher's plan logic, also when reached through a symlink (npm links it).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { tmpDir } from '../../helpers/tmp-dir.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const LAUNCHER = join(root, 'build', 'Release', 'podsock-launch');
const skip = existsSync(LAUNCHER) ? false : 'podsock-launch is not built (npx node-gyp rebuild)';

void t.test('podsock runs node with podsock.cjs beside it, through the launcher', { skip }, async (t) => {
  const dir = tmpDir(t, 'podsock-command-test-');
  const bin = join(dir, 'pkg', 'dist', 'bin');
  mkdirSync(bin, { recursive: true });
  copyFileSync(LAUNCHER, join(bin, 'podsock'));
  // The stand-in for podsock.cjs: prints what node was asked to run and what the launcher told it.
  writeFileSync(
    join(bin, 'podsock.cjs'),
    `process.stdout.write(JSON.stringify({ argv: process.argv.slice(1), execArgv: process.execArgv, execPath: process.execPath, plan: process.env.PODSOCK_PLAN ?? null, prestart: process.env.PODSOCK_PRESTART ?? null }));\n`,
  );
  const linkDir = join(dir, 'prefix', 'bin');
  mkdirSync(linkDir, { recursive: true });
  symlinkSync(join(bin, 'podsock'), join(linkDir, 'podsock'));
  const env = { PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, XDG_RUNTIME_DIR: join(dir, 'xdg'), HOME: dir };

  for (const file of [join(bin, 'podsock'), join(linkDir, 'podsock')]) {
    const r = spawnSync(file, ['run', 'web', '--log-level', 'debug'], { env, encoding: 'utf8' });
    t.equal(r.status, 0, r.stderr);
    const seen = JSON.parse(r.stdout) as { argv: string[]; execArgv: string[]; execPath: string; plan: string | null; prestart: string | null };
    t.same(seen.argv, [join(bin, 'podsock.cjs'), 'run', 'web', '--log-level', 'debug'], `${file}: node runs podsock.cjs beside the real file`);
    t.same(seen.execArgv, ['--v8-pool-size=1'], 'node runs with one V8 worker thread');
    t.match(seen.plan, /\/podsock\/state\/launch-[0-9a-f]{16}\.plan$/, 'the launcher named the plan (run goes through it)');
    t.equal(seen.prestart, 'none no plan yet');
  }
  const other = spawnSync(join(linkDir, 'podsock'), ['--version'], { env, encoding: 'utf8' });
  t.equal(other.status, 0);
  t.same((JSON.parse(other.stdout) as { plan: string | null }).plan, null, 'no plan for other commands');

  const noNode = spawnSync(join(linkDir, 'podsock'), ['run', 'web'], { env: { ...env, PATH: join(dir, 'empty') }, encoding: 'utf8' });
  t.equal(noNode.status, 127);
  t.match(noNode.stderr, /^podsock: node not found on PATH '.*empty': install Node\.js 20 or newer/);
});

void t.test('podsock-launch under its own name still takes NODE SCRIPT from its arguments', { skip }, async (t) => {
  const r = spawnSync(LAUNCHER, [], { encoding: 'utf8' });
  t.equal(r.status, 2);
  t.match(r.stderr, /^Usage: podsock-launch NODE SCRIPT/);
});
