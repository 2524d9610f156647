/**
 * Pure /proc arithmetic of the memory benchmark (memory.ts): the text of /proc/PID/smaps_rollup and
 * /proc/PID/stat parsed, and the set of processes a service keeps alive besides its application,
 * found in a pid -> ppid map. No I/O here, so all of it is unit-tested (test/unit/bench/memory-proc.test.ts).
 *
 * Which processes count (the benchmark's definition of "what the service costs beyond the app"):
 * every process below the service's main process (or main processes: proxyd's service and the
 * container service it requires), plus the container's conmon, which podman double-forks and which
 * is therefore often not below the service at all; minus everything below conmon, which is the
 * container itself (runc's init, then the application). conmon itself counts. A process that
 * daemonized out of the tree but still runs in the service's cgroup (systemd's view of the service)
 * is a root of its own: see cgroupMembers().
 */

/** Memory of one process in KiB, from smaps_rollup (proc(5)). */
export interface Footprint {
  /** Proportional set size: private pages plus each shared page divided by the number of its mappers. */
  pss: number;
  /** Unique set size: Private_Clean + Private_Dirty, what exiting the process would give back. */
  uss: number;
}

/**
 * PSS and USS in KiB from the text of /proc/PID/smaps_rollup (Linux >= 4.14). Throws when a field is
 * missing, as for a zombie or a kernel thread, whose smaps_rollup is empty, so that a process that
 * was not measured never counts as 0 KiB.
 */
export function parseSmapsRollup(text: string): Footprint {
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text);
    if (m === null) throw new Error(`No '${name}' line in smaps_rollup: '${text.trim().slice(0, 120)}'`);
    return Number(m[1]);
  };
  return { pss: field('Pss'), uss: field('Private_Clean') + field('Private_Dirty') };
}

/** The fields of /proc/PID/stat the benchmark needs. */
export interface StatLine {
  pid: number;
  /** The command name (comm, at most 15 bytes), without the parentheses. */
  comm: string;
  ppid: number;
}

/**
 * pid, comm and ppid (proc(5) fields 1, 2 and 4) from the text of /proc/PID/stat. comm may hold
 * spaces and parentheses, so it ends at the last ')' of the line.
 */
export function parseStat(text: string): StatLine {
  const open = text.indexOf(' (');
  const close = text.lastIndexOf(')');
  const pid = Number(text.slice(0, open));
  // After ") " come field 3 (state) and field 4 (ppid).
  const ppid = Number(text.slice(close + 2).split(' ')[1]);
  if (open < 1 || close < open || !Number.isSafeInteger(pid) || !Number.isSafeInteger(ppid)) {
    throw new Error(`Malformed /proc/PID/stat: '${text.slice(0, 200)}'`);
  }
  return { pid, comm: text.slice(open + 2, close), ppid };
}

/** pid -> ppid of every process that was listed. */
export type ProcessTree = ReadonlyMap<number, number>;

/**
 * `root` and every process below it in `tree`. A root that is not in the tree (it exited) yields an
 * empty set; a pid that is its own ancestor (impossible in /proc, possible in a torn read) is visited once.
 */
export function subtree(tree: ProcessTree, root: number): Set<number> {
  const out = new Set<number>();
  if (!tree.has(root)) return out;
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of tree) {
    const list = children.get(ppid);
    if (list === undefined) children.set(ppid, [pid]);
    else list.push(pid);
  }
  const todo = [root];
  for (let pid = todo.pop(); pid !== undefined; pid = todo.pop()) {
    if (out.has(pid)) continue;
    out.add(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

/**
 * The processes a service keeps besides its application, ascending: the subtrees of `mains` (the
 * services' MainPIDs) and the `conmons` themselves, without anything strictly below a conmon.
 * Roots and conmons that are not in `tree` (they exited) add nothing.
 */
export function keptProcesses(tree: ProcessTree, mains: readonly number[], conmons: readonly number[]): number[] {
  const kept = new Set<number>();
  for (const main of mains) for (const pid of subtree(tree, main)) kept.add(pid);
  for (const conmon of conmons) if (tree.has(conmon)) kept.add(conmon);
  for (const conmon of conmons) {
    for (const pid of subtree(tree, conmon)) if (pid !== conmon) kept.delete(pid);
  }
  return [...kept].sort((a, b) => a - b);
}

/**
 * The cgroup v2 path of a process (the `0::PATH` line of /proc/PID/cgroup, cgroups(7)), or null when
 * the unified hierarchy is not mounted. systemd's ControlGroup= of a unit is the same path.
 */
export function unifiedCgroup(text: string): string | null {
  const m = /^0::(\/.*)$/m.exec(text);
  return m === null ? null : (m[1] as string);
}

/** The pids (ascending) whose cgroup is one of `cgroups` or below one of them. */
export function cgroupMembers(cgroupOf: ReadonlyMap<number, string>, cgroups: readonly string[]): number[] {
  const inside = (path: string): boolean => cgroups.some((c) => path === c || path.startsWith(`${c}/`));
  return [...cgroupOf].filter(([, path]) => inside(path)).map(([pid]) => pid).sort((a, b) => a - b);
}
