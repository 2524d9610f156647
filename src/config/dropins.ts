/**
 * Which drop-ins apply to a .container file, and in what order, as Quadlet finds them (podman 5.x:
 * containers/podman cmd/quadlet/main.go loadUnitDropins() and pkg/systemd/parser/unitfile.go
 * GetUnitDropinPaths()), which is how systemd finds a unit's drop-ins (systemd.unit(5), "drop-in"):
 *
 * - The drop-in directories, most specific first, each looked for in every search directory in
 *   order: `FILE.container.d/`; for an instance 'web@blue.container' the template's `web@.container.d/`;
 *   for a name with dashes 'my-app-x' the prefixes `my-app-.container.d/` then `my-.container.d/`
 *   (and `my-app-@.container.d/`, `my-@.container.d/` for a template); last `container.d/`, which
 *   applies to every .container file there.
 * - A name seen first wins: `10-x.conf` in a more specific directory (or, for the same kind, in a
 *   higher-priority search directory) hides every other `10-x.conf`. A drop-in that is a symbolic link
 *   to /dev/null (or empty) so masks the others and adds nothing.
 * - The files found are applied in lexical order of their names, whatever directory each is in.
 *
 * Entries that are not regular files (directories named x.conf, sockets) are skipped, as systemd's
 * conf_files_list() skips them; /dev/null is the exception above. At most MAX_DROPINS apply.
 */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

import { PodsockError, q } from '../errors.js';

/** Most drop-ins applied to one file; more is refused, naming the directories. */
export const MAX_DROPINS = 256;

/** The drop-in directory names for a file name, most specific first (GetUnitDropinPaths()). */
export function dropinNames(fileName: string): string[] {
  const dot = fileName.lastIndexOf('.');
  const ext = dot <= 0 ? '' : fileName.slice(dot);
  const base = dot <= 0 ? fileName : fileName.slice(0, dot);
  const at = base.indexOf('@');
  const unitName = at === -1 ? base : base.slice(0, at);
  const isTemplate = at !== -1;
  const instance = at === -1 ? '' : base.slice(at + 1);
  const broadFirst = [`${ext.slice(1)}.d`];
  const parts = unitName.split('-');
  for (let i = 1; i < parts.length; i++) {
    const truncated = `${parts.slice(0, i).join('-')}-`;
    broadFirst.push(`${truncated}${ext}.d`);
    if (isTemplate) broadFirst.push(`${truncated}@${ext}.d`);
  }
  if (instance !== '') broadFirst.push(`${unitName}@${ext}.d`);
  broadFirst.push(`${fileName}.d`);
  return [...new Set(broadFirst.reverse())];
}

/** The drop-in directories for `configFile` given the search directories, in the order they are searched. */
export function dropinDirs(configFile: string, dirs: readonly string[]): string[] {
  return [...new Set(dropinNames(basename(configFile)).flatMap((n) => dirs.map((d) => join(d, n))))];
}

function listConf(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => n.endsWith('.conf'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw new PodsockError('PODSOCK_ERR_CONFIG', `Cannot read drop-in directory ${q(dir)}: ${(err as Error).message}`, { cause: err, details: { file: dir } });
  }
}

/** What a drop-in name resolves to: a file to read, or null when it masks (links to /dev/null). */
function usable(path: string): string | null | undefined {
  try {
    if (realpathSync(path) === '/dev/null') return null;
    return statSync(path).isFile() ? path : undefined;
  } catch {
    // Dangling link, unreadable: not a drop-in (systemd skips it as well).
    return undefined;
  }
}

/**
 * The drop-in files to apply to `configFile`, in the order they apply (see the module comment).
 * `dirs` are the directories to look in, highest priority first. Throws PodsockError
 * ('PODSOCK_ERR_CONFIG') when a drop-in directory exists but cannot be read, or holds more than
 * MAX_DROPINS files.
 */
export function findDropins(configFile: string, dirs: readonly string[]): string[] {
  const chosen = new Map<string, string | null>();
  const searched = dropinDirs(configFile, dirs);
  for (const dir of searched) {
    for (const name of listConf(dir)) {
      if (chosen.has(name)) continue;
      const path = usable(join(dir, name));
      if (path === undefined) continue;
      chosen.set(name, path);
      if (chosen.size > MAX_DROPINS) {
        throw new PodsockError('PODSOCK_ERR_CONFIG', `More than ${MAX_DROPINS} drop-ins for ${q(configFile)} in ${searched.map((d) => q(d)).join(', ')}`, {
          details: { file: configFile },
        });
      }
    }
  }
  return [...chosen.keys()]
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .flatMap((n) => {
      const p = chosen.get(n);
      return p === null || p === undefined ? [] : [p];
    });
}
