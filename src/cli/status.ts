/**
 * `podsock status [NAME] [--json]`: what the services podsock knows on this host are doing, from the
 * status files podsock writes in its state directories (status/status-file.ts). Root reads the system
 * state directory; any other user reads their own and, if it can, the system one (and says when it
 * cannot). It never talks to a running podsock: whether one still runs is checked by its recorded pid
 * and start time (status/liveness.ts), not taken from the file.
 *
 * Output: a table on stdout, or with --json the document of status/status-view.ts. Status files and
 * directories that cannot be read are named on stderr (and in the document's `unreadable`), ", ignoring".
 * `podsock status NAME` for a NAME with no status file is PODSOCK_ERR_UNKNOWN_SERVICE naming where it
 * looked; a NAME whose file is corrupt or foreign is PODSOCK_ERR_STATE_FILE.
 */
import { readdirSync } from 'node:fs';
import { assertSafeName } from '../config/find.js';
import { PodsockError, isPodsockError, q } from '../errors.js';
import { stateDirFor } from '../paths.js';
import { processAlive } from '../status/liveness.js';
import { readStatusFile, STATUS_SUFFIX, statusFileFor } from '../status/status-file.js';
import { formatStatusTable, viewOf, type Scope, type StatusDocument, type StatusView } from '../status/status-view.js';
import { parseArgs, type FlagSpec } from './args.js';

const STATUS_FLAGS: Record<string, FlagSpec> = {
  json: { value: false },
  help: { value: false, short: 'h' },
};

/** Most status files listed from one directory. */
const MAX_SERVICES = 4096;

export interface StatusInput {
  argv: string[];
  env: NodeJS.ProcessEnv;
  uid: number;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** For tests: the time, the system state directory, and the liveness check. */
  now?: number;
  systemStateDir?: string;
  alive?: (pid: number, start: string | null) => boolean;
}

interface Place {
  scope: Scope;
  dir: string;
}

function message(err: unknown): string {
  if (isPodsockError(err)) return err.message;
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EACCES' ? 'permission denied' : code ?? (err as Error).message;
}

/** Show the status; resolves with the exit status. */
export function statusCommand(input: StatusInput): number {
  const out = input.stdout ?? ((s: string) => void process.stdout.write(s));
  const err = input.stderr ?? ((s: string) => void process.stderr.write(s));
  const p = parseArgs(input.argv, STATUS_FLAGS, 'status');
  if (p.positionals.length > 1 || p.passthrough.length > 0) {
    throw new PodsockError('PODSOCK_ERR_USAGE', `podsock status: expected at most one service NAME, got ${[...p.positionals, ...p.passthrough].map((x) => q(x)).join(' ')} (see 'podsock status --help')`);
  }
  const name = p.positionals[0];
  if (name !== undefined) assertSafeName(name);
  const systemDir = input.systemStateDir ?? stateDirFor({}, 0);
  const places: Place[] = input.uid === 0 ? [{ scope: 'system', dir: systemDir }] : [{ scope: 'user', dir: stateDirFor(input.env, input.uid) }, { scope: 'system', dir: systemDir }];
  const alive = input.alive ?? processAlive;
  const now = input.now ?? Date.now();
  const doc: StatusDocument = { version: 1, services: [], unreadable: [] };

  const view = (place: Place, file: string): StatusView | null => {
    const r = readStatusFile(file);
    return r === null ? null : viewOf(r, place.scope, file, alive(r.pid, r.pidStart));
  };

  if (name !== undefined) {
    for (const place of places) {
      // A directory that cannot be read is said in the error below (the file may be in it).
      try {
        readdirSync(place.dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') doc.unreadable.push({ path: place.dir, error: message(e) });
        continue;
      }
      const v = view(place, statusFileFor(place.dir, name));
      if (v !== null) {
        doc.services.push(v);
        break;
      }
    }
    if (doc.services.length === 0) {
      const looked = places.map((pl) => q(pl.dir)).join(' and ');
      const unread = doc.unreadable.map((u) => ` (${q(u.path)} cannot be read: ${u.error})`).join('');
      throw new PodsockError('PODSOCK_ERR_UNKNOWN_SERVICE', `podsock status: no service ${q(name)} recorded in ${looked}${unread}; podsock records a service when 'podsock run ${name}' first runs`, {
        details: { name },
      });
    }
  } else {
    for (const place of places) {
      let names: string[];
      try {
        names = readdirSync(place.dir).filter((f) => f.endsWith(STATUS_SUFFIX) && !f.startsWith('.')).sort();
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') doc.unreadable.push({ path: place.dir, error: message(e) });
        continue;
      }
      if (names.length > MAX_SERVICES) {
        doc.unreadable.push({ path: place.dir, error: `${names.length} status files, only the first ${MAX_SERVICES} are shown` });
        names = names.slice(0, MAX_SERVICES);
      }
      for (const f of names) {
        const file = `${place.dir}/${f}`;
        try {
          const v = view(place, file);
          if (v !== null) doc.services.push(v);
        } catch (e) {
          doc.unreadable.push({ path: file, error: message(e) });
        }
      }
    }
  }

  for (const u of doc.unreadable) {
    const what = u.path.endsWith(STATUS_SUFFIX) ? u.error : `cannot read the ${places.find((pl) => pl.dir === u.path)?.scope ?? ''} services in ${q(u.path)}: ${u.error}`;
    err(`podsock status: ${what}, ignoring\n`);
  }
  if (p.flags.has('json')) out(`${JSON.stringify(doc, null, 2)}\n`);
  else if (doc.services.length === 0) out('No services recorded yet: podsock records a service when it first runs it.\n');
  else out(formatStatusTable(doc.services, now));
  return 0;
}
