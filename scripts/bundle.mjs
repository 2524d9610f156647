// Bundle the podsock executable for start-up speed. A cold start pays for every module Node
// resolves, reads and compiles, and for its ES module loader: `podsock run` from tsc's output
// (dist/cli/main.js, some fifty ES modules and their dependencies) spent about ten times Node's own
// start-up before it spawned podman. This writes dist/bin/podsock.cjs: one CommonJS file holding
// podsock, where everything a subcommand loads with import() is
// wrapped so it is evaluated on first use only. It sits two levels below the package root, like
// tsc's dist/cli/main.js, so the addon and package.json are found at the same relative paths.
import { chmodSync } from 'node:fs';
import { build } from 'esbuild';

const outfile = 'dist/bin/podsock.cjs';
await build({
  entryPoints: ['src/cli/main.ts'],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: true,
  minifyWhitespace: true,
  minifySyntax: true,
  // Loaded with import() after the start-up path, so left to Node to load from node_modules when used:
  // execa (ES-module-only, `podsock demo` alone) and pino (about a third of the bundle otherwise, and
  // log.ts loads it only after start-up).
  external: ['execa', 'pino'],
  // The sources are ES modules that locate files from import.meta.url; give the bundle its own URL.
  define: { 'import.meta.url': '__podsockUrl' },
  banner: { js: "'use strict'; const __podsockUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});
chmodSync(outfile, 0o755);
// dist/bin/podsock, the installed command, beside the bundle it runs.
await import('./install-command.mjs');
