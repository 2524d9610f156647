/**
 * Which drop-ins apply to a .container file, and in what order, as Quadlet finds them
 * (containers/podman cmd/quadlet/main.go, loadUnitDropins()) and systemd finds a unit's drop-ins
 * (systemd.unit(5), "drop-in"):
 *
 * - For FILE.container, every `*.conf` in `DIR/FILE.container.d/` for each directory DIR in order;
 *   for an instance 'web@1.container', also the template's `DIR/web@.container.d/`, after every
 *   `web@1.container.d/`.
 * - A name seen first wins: `10-x.conf` in an earlier (higher-priority) directory hides the file of
 *   the same name further down the list. A drop-in that is a symbolic link to /dev/null (or empty)
 *   so masks a lower one and adds nothing.
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

/** The drop-in directories for `configFile` given the directories to search, in priority order. */
export function dropinDirs(configFile: string, dirs: readonly string[]): string[] {
  const name = basename(configFile);
  const out = dirs.map((d) => join(d, `${name}.d`));
  const m = /^([^@]+)@(.+)(\.[^.]+)$/.exec(name);
  if (m !== null) for (const d of dirs) out.push(join(d, `${m[1] as string}@${m[3] as string}.d`));
  return [...new Set(out)];
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
