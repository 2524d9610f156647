// The addon's C sources as binding.gyp lists them, and the Node headers node-gyp built them with: the
// tests that compile the addon again (native-build, relay-asan) take both from here, so that a new C
// file cannot be left out of them.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..');

/** The addon's sources as binding.gyp lists them (its `#` comment lines left out, the rest is JSON). */
export function addonSources(): string[] {
  const gyp = readFileSync(join(root, 'binding.gyp'), 'utf8').split('\n').filter((l) => !/^\s*#/.test(l)).join('\n');
  const targets = (JSON.parse(gyp) as { targets: { target_name: string; sources: string[] }[] }).targets;
  const addon = targets.find((x) => x.target_name === 'podsock_native');
  if (addon === undefined) throw new Error("binding.gyp has no target 'podsock_native'");
  return addon.sources.map((f) => join(root, f));
}

/** The Node headers' directory node-gyp used for build/ (build/config.gypi), or undefined. */
export function nodeDir(): string | undefined {
  return /"nodedir":\s*"([^"]+)"/.exec(readFileSync(join(root, 'build', 'config.gypi'), 'utf8'))?.[1];
}
