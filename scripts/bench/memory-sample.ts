/**
 * One memory sample of a running service: list /proc, pick the processes the service keeps besides
 * its application (memory-proc.ts keptProcesses()) and read each one's smaps_rollup. Reading another
 * process's smaps_rollup needs ptrace access to it (root, or the same user).
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { UserManager } from './cold-systemd.js';
import { cgroupMembers, keptProcesses, parseSmapsRollup, parseStat, subtree, unifiedCgroup, type Footprint, type StatLine } from './memory-proc.js';
import type { ProcessMemory, ServiceMemory } from './memory-summary.js';
import { conmonPid, serviceProcess } from './memory-systemd.js';
import type { Layout } from './memory-units.js';

/** Every process now in /proc by pid; processes that exit while it is read are left out. */
export function readProcesses(): Map<number, StatLine> {
  const out = new Map<number, StatLine>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const s = parseStat(readFileSync(`/proc/${name}/stat`, 'utf8'));
      out.set(s.pid, s);
    } catch {
      // Exited between readdir and read: it is not part of any service any more.
    }
  }
  return out;
}

/** The cgroup v2 path of each of `pids` that still runs and has one. */
export function readCgroups(pids: Iterable<number>): Map<number, string> {
  const out = new Map<number, string>();
  for (const pid of pids) {
    try {
      const path = unifiedCgroup(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
      if (path !== null) out.set(pid, path);
    } catch {
      // Exited meanwhile.
    }
  }
  return out;
}

/** The process's PSS and USS, or null when it exited (or turned zombie) before it could be read. */
export function footprint(pid: number): Footprint | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return null;
    throw err;
  }
  return text.trim() === '' ? null : parseSmapsRollup(text);
}

/** A measurement of one service and what could not be measured. */
export interface Sample {
  memory: ServiceMemory;
  /** Non-fatal findings for the log ("pid 123 exited before it was read, ignoring"). */
  notes: string[];
}

/**
 * The kept processes of the service `l` with their PSS and USS: the subtrees of its services' main
 * processes plus its containers' conmons, without the containers' own processes. A process in a
 * service's cgroup but outside those subtrees (one that daemonized, e.g. a helper of `podman run -d`)
 * is the service's too: it counts, with a note. A "conmon" whose command is not `conmon`, or that has
 * no process below it, would mean that the definition no longer fits what podman does: noted too.
 */
export async function sampleService(m: UserManager, l: Layout): Promise<Sample> {
  const services = await Promise.all(l.services.map((s) => serviceProcess(m, s)));
  const conmons = await Promise.all(l.containers.map((c) => conmonPid(m, c)));
  const mains = services.map((s) => s.mainPid);
  const procs = readProcesses();
  const tree = new Map([...procs].map(([pid, s]) => [pid, s.ppid]));
  const notes: string[] = [];
  const name = (pid: number): string => `'${procs.get(pid)?.comm ?? '?'}' (pid ${pid})`;
  for (const c of conmons) {
    const comm = procs.get(c)?.comm;
    if (comm !== 'conmon') notes.push(`${l.unit}: conmon pid ${c} is '${comm ?? 'gone'}', ignoring`);
    if (subtree(tree, c).size <= 1) notes.push(`${l.unit}: conmon ${name(c)} has no container processes below it, ignoring`);
  }
  const reached = new Set(keptProcesses(tree, mains, conmons));
  const container = new Set(conmons.flatMap((c) => [...subtree(tree, c)]));
  const cgroups = services.flatMap((s) => (s.cgroup === null ? [] : [s.cgroup]));
  const strays = cgroupMembers(readCgroups(procs.keys()), cgroups).filter((pid) => !reached.has(pid) && !container.has(pid));
  for (const pid of strays) notes.push(`${l.unit}: ${name(pid)} runs in the service's cgroup outside its main process's tree; counted`);
  const processes: ProcessMemory[] = [];
  for (const pid of keptProcesses(tree, [...mains, ...strays], conmons)) {
    const f = footprint(pid);
    if (f === null) notes.push(`${l.unit}: ${name(pid)} exited before it was measured, ignoring`);
    else processes.push({ pid, comm: procs.get(pid)?.comm ?? '?', ...f });
  }
  return { memory: { unit: l.unit, processes }, notes };
}
