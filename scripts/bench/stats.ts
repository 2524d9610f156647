/**
 * Pure helpers of the proxy benchmark: parsing wrk's and /proc's output, medians, ratios and the
 * summary table. No I/O here, so all of it is unit-tested (test/unit/bench/stats.test.ts).
 */

/** What one wrk run reports (wrk 4.1 text output). */
export interface WrkResult {
  requests: number;
  seconds: number;
  requestsPerSec: number;
  /** connect + read + write + timeout socket errors. */
  socketErrors: number;
  /** Responses that were not 2xx or 3xx. */
  non2xx: number;
}

/**
 * Parse wrk's summary ("N requests in 5.00s, X MB read", "Requests/sec: R", optional
 * "Socket errors: connect a, read b, write c, timeout d" and "Non-2xx or 3xx responses: n").
 * Throws an Error naming the missing line when the output is not a wrk summary, so a wrk that
 * failed (bad URL, refused connection) never yields a plausible-looking zero.
 */
export function parseWrk(output: string): WrkResult {
  const total = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m),/m.exec(output);
  const rps = /^Requests\/sec:\s+([\d.]+)/m.exec(output);
  if (!total || !rps) throw new Error(`Not a wrk summary (no 'requests in' or 'Requests/sec' line): '${output.trim().slice(0, 200)}'`);
  const unit = { us: 1e-6, ms: 1e-3, s: 1, m: 60 }[total[3] as 'us' | 'ms' | 's' | 'm'];
  const errors = /^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/m.exec(output);
  const non2xx = /^\s*Non-2xx or 3xx responses: (\d+)/m.exec(output);
  return {
    requests: Number(total[1]),
    seconds: Number(total[2]) * unit,
    requestsPerSec: Number(rps[1]),
    socketErrors: errors ? errors.slice(1, 5).reduce((n, x) => n + Number(x), 0) : 0,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  };
}

/** A value of /proc/PID/status in KiB ("VmHWM:\t  51234 kB"), or null when the field is absent. */
export function statusKiB(status: string, field: string): number | null {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  return m ? Number(m[1]) : null;
}

/**
 * utime + stime in clock ticks from the text of /proc/PID/stat (proc(5) fields 14 and 15). The
 * command name (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
 */
export function statCpuTicks(stat: string): number {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`Malformed /proc/PID/stat: '${stat.slice(0, 200)}'`);
  return utime + stime;
}

/** The median of a non-empty list (the mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median of an empty list');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** `a / b`, or null when either side is missing or b is 0. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || b === 0) return null;
  return a / b;
}

/** "1.23x", or "n/a" for a missing ratio. */
export function formatRatio(r: number | null): string {
  return r === null ? 'n/a' : `${r.toFixed(2)}x`;
}

/** A number with a fixed count of significant decimals for the table: 12345.6 -> "12346", 12.345 -> "12.3". */
export function formatValue(v: number): string {
  if (v >= 1000) return Math.round(v).toString();
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** Lay out rows as left-aligned columns separated by two spaces (the first row is the header). */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

/** One target of the issue: `subject / base` must be at least `min`. */
export interface RatioTarget {
  scenario: string;
  subject: string;
  base: string;
  min: number;
}

/** Verdict line for a ratio target: "keepalive podsock/proxyd 1.85x >= 1.70x ok". */
export function targetVerdict(t: RatioTarget, r: number | null): string {
  const ok = r !== null && r >= t.min;
  return `${t.scenario} ${t.subject}/${t.base} ${formatRatio(r)} >= ${t.min.toFixed(2)}x ${ok ? 'ok' : 'MISSED'}`;
}
