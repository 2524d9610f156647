/**
 * Pure arithmetic and layout of the memory benchmark (memory.ts): per-service totals, the means over
 * several services of one variant, and the Markdown table with its per-process lines. Sizes are KiB
 * inside and MiB only in the printed text. Unit-tested in test/unit/bench/memory-summary.test.ts.
 */
import type { Footprint } from './memory-proc.js';
import { formatValue } from './stats.js';

/** One measured process of a service. */
export interface ProcessMemory extends Footprint {
  pid: number;
  comm: string;
}

/** One service's kept processes at one moment. */
export interface ServiceMemory {
  unit: string;
  processes: ProcessMemory[];
}

/** The sum of the processes' PSS and USS. */
export function total(processes: readonly Footprint[]): Footprint {
  return processes.reduce((t, p) => ({ pss: t.pss + p.pss, uss: t.uss + p.uss }), { pss: 0, uss: 0 });
}

/** A process role within the services of one measurement: its name and how it costs on average. */
export interface RoleMean extends Footprint {
  /** comm, with `#2`, `#3`... for the second and later processes of the same comm in one service (by pid). */
  name: string;
  /** In how many of the services a process of this role was found. */
  services: number;
}

/** One row of the table: a variant in a scenario, averaged over its services. */
export interface GroupMean extends Footprint {
  /** How many services were measured. */
  services: number;
  /** Mean processes kept per service. */
  processes: number;
  /** Per role, in order of first appearance; PSS and USS are means over the services that have the role. */
  roles: RoleMean[];
}

/** The role names of a service's processes, in pid order: comm, then comm#2... for repeats. */
export function roleNames(processes: readonly ProcessMemory[]): Map<ProcessMemory, string> {
  const seen = new Map<string, number>();
  const out = new Map<ProcessMemory, string>();
  for (const p of [...processes].sort((a, b) => a.pid - b.pid)) {
    const n = (seen.get(p.comm) ?? 0) + 1;
    seen.set(p.comm, n);
    out.set(p, n === 1 ? p.comm : `${p.comm}#${n}`);
  }
  return out;
}

/**
 * PSS and USS per service (the mean of the services' totals), the mean count of processes, and the
 * mean of each role. Throws on an empty list: a row without a measurement must not read as 0 MiB.
 */
export function groupMean(services: readonly ServiceMemory[]): GroupMean {
  if (services.length === 0) throw new Error('groupMean of no services');
  const n = services.length;
  const sum = total(services.map((s) => total(s.processes)));
  const roles = new Map<string, { pss: number; uss: number; services: number }>();
  for (const s of services) {
    for (const [p, name] of roleNames(s.processes)) {
      const r = roles.get(name) ?? { pss: 0, uss: 0, services: 0 };
      roles.set(name, { pss: r.pss + p.pss, uss: r.uss + p.uss, services: r.services + 1 });
    }
  }
  return {
    services: n,
    pss: sum.pss / n,
    uss: sum.uss / n,
    processes: services.reduce((k, s) => k + s.processes.length, 0) / n,
    roles: [...roles].map(([name, r]) => ({ name, services: r.services, pss: r.pss / r.services, uss: r.uss / r.services })),
  };
}

/** KiB as MiB with about three significant digits ("45.3", "0.52"). */
export function mib(kib: number): string {
  return formatValue(kib / 1024);
}

/** One row of the printed table. */
export interface Row {
  variant: string;
  scenario: string;
  mean: GroupMean;
}

/**
 * "node, podman, conmon": the roles, each with `(k/n)` when only k of the n services had it, and a
 * count first when the services kept different numbers of processes ("2.5: ...").
 */
export function rolesCell(m: GroupMean): string {
  const names = m.roles.map((r) => (r.services === m.services ? r.name : `${r.name} (${r.services}/${m.services})`)).join(', ');
  return Number.isInteger(m.processes) ? names : `${formatValue(m.processes)}: ${names}`;
}

/** Lay out rows as a Markdown table, every column padded to its widest cell; the first row is the header. */
export function markdownTable(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length, 3)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  const [head, ...body] = rows;
  if (head === undefined) return '';
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** The summary table: variant | scenario | processes kept | PSS per service MiB | USS per service MiB. */
export function formatTable(rows: readonly Row[]): string {
  return markdownTable([
    ['variant', 'scenario', 'processes kept', 'PSS per service MiB', 'USS per service MiB'],
    ...rows.map((r) => [r.variant, r.scenario, rolesCell(r.mean), mib(r.mean.pss), mib(r.mean.uss)]),
  ]);
}

/** Per row, one line per role: "podsock-proxy, 6 services, after load: node PSS 40.1 USS 35.2 MiB". */
export function formatBreakdown(rows: readonly Row[]): string {
  return rows
    .flatMap((r) => [
      `${r.variant}, ${r.scenario}:`,
      ...r.mean.roles.map((p) => `  ${p.name.padEnd(16)} PSS ${mib(p.pss).padStart(6)}  USS ${mib(p.uss).padStart(6)} MiB${p.services === r.mean.services ? '' : ` (in ${p.services} of ${r.mean.services} services)`}`),
      `  ${'total'.padEnd(16)} PSS ${mib(r.mean.pss).padStart(6)}  USS ${mib(r.mean.uss).padStart(6)} MiB per service`,
    ])
    .join('\n');
}
