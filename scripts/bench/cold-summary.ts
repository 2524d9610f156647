/**
 * Pure parts of the cold-start benchmark: checking a reply, the round order, and the summary with
 * the targets. No I/O, so all of it is unit-tested (test/unit/bench/cold-summary.test.ts).
 */
import { formatRatio, median, table } from './stats.js';

/**
 * Why `reply` (the whole bytes of an HTTP/1.0 exchange, as latin1) is not a 200 carrying exactly
 * `bodyBytes` bytes of body, or null when it is. A benchmark that timed an error page would look
 * fast, so every sample is checked.
 */
export function checkReply(reply: string, bodyBytes: number): string | null {
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(reply);
  if (!status) return `not an HTTP reply: '${reply.slice(0, 80).replace(/\r?\n/g, '\\n')}'`;
  if (status[1] !== '200') return `status ${status[1]}, expected 200`;
  const end = reply.indexOf('\r\n\r\n');
  if (end < 0) return 'reply headers never ended';
  const body = reply.length - end - 4;
  return body === bodyBytes ? null : `body of ${body} bytes, expected ${bodyBytes}`;
}

/** `items` rotated left by `round`: A B C, then B C A, then C A B... so no variant is always first. */
export function rotate<T>(items: readonly T[], round: number): T[] {
  const n = items.length;
  return items.map((_, i) => items[(i + round) % n] as T);
}

/** Median, min and max of a non-empty list of milliseconds, and its count. */
export interface Spread {
  n: number;
  median: number;
  min: number;
  max: number;
}

export function spread(values: readonly number[]): Spread {
  return { n: values.length, median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/** A target of the issue of the form `subject / base <= max` (first byte after activation). */
export interface CeilingTarget {
  subject: string;
  base: string;
  max: number;
}

/** Issue 7: podsock handover within 1.25x of podman's own activation on --network none, proxy within 1.3x of it on the default network. */
export const COLD_TARGETS: readonly CeilingTarget[] = [
  { subject: 'podsock-handover', base: 'native-none', max: 1.25 },
  { subject: 'podsock-proxy', base: 'native-default', max: 1.3 },
];

/** Issue 7: podsock's own start (exec to spawning podman) at most `node -e 0` plus this. */
export const OWN_START_MARGIN_MS = 25;

/** Samples of one variant by round; a round in which the variant was not measured holds null. */
export type Samples = Readonly<Record<string, readonly (number | null)[]>>;

/** The medians of the per-round ratios subject/base, over the rounds that measured both. */
export function pairedRatio(samples: Samples, subject: string, base: string): number | null {
  const a = samples[subject] ?? [];
  const b = samples[base] ?? [];
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x != null && y != null && y > 0) ratios.push(x / y);
  }
  return ratios.length === 0 ? null : median(ratios);
}

/** One target's outcome: the ratio of the medians decides; the median of per-round ratios is shown beside it. */
export interface TargetResult {
  subject: string;
  base: string;
  max: number;
  ratioOfMedians: number | null;
  medianOfRoundRatios: number | null;
  ok: boolean | null;
}

/** podsock's own start against Node's bare start-up, in milliseconds. */
export interface OwnStartResult {
  /** Spawn to the stub's stamp of `podman run`. */
  podsock: Spread;
  /** Spawn to the stamp of the stub alone, started through the same trampoline: the part of `podsock` after podsock's spawn(). */
  stub: Spread;
  /** Spawn to exit of `node -e 0`. */
  node: Spread;
  /** median(podsock) - median(stub) - median(node): podsock's start beyond Node's own, which the target bounds. */
  difference: number;
  /** The median of podsock - stub - node within each run (the three are measured back to back): less exposed to slow swings of load. */
  medianOfRunDifferences: number;
  margin: number;
  ok: boolean;
}

/** The raw samples of the own-start measurement. */
export interface OwnStartSamples {
  podsock: readonly number[];
  stub: readonly number[];
  node: readonly number[];
}

/**
 * Where one sample's time went, in ms after connect(): systemd forked the service's main process
 * (`exec`), the service became active (`active`: READY=1 for podsock, the fork for a Type=simple
 * service). Null when systemd did not record the moment.
 */
export interface Phases {
  exec: number | null;
  active: number | null;
}

/** Phases of one variant by round, like Samples. */
export type PhaseSamples = Readonly<Record<string, readonly (Phases | null)[]>>;

export interface ColdSummary {
  variants: Record<string, Spread>;
  /** Median phases by variant, over the samples that have them. */
  phases: Record<string, Phases>;
  targets: TargetResult[];
  ownStart: OwnStartResult | null;
}

const present = (values: readonly (number | null)[] | undefined): number[] => (values ?? []).filter((v): v is number => v !== null);

/** Summarise first-byte samples (ms by variant and round) and, when measured, the own-start samples. */
export function summarise(samples: Samples, own: OwnStartSamples | null, phaseSamples: PhaseSamples = {}): ColdSummary {
  const variants: Record<string, Spread> = {};
  for (const [name, values] of Object.entries(samples)) {
    const v = present(values);
    if (v.length > 0) variants[name] = spread(v);
  }
  const phases: Record<string, Phases> = {};
  for (const [name, list] of Object.entries(phaseSamples)) {
    const pick = (key: keyof Phases): number | null => {
      const v = present(list.map((p) => p?.[key] ?? null));
      return v.length === 0 ? null : median(v);
    };
    const p = { exec: pick('exec'), active: pick('active') };
    if (p.exec !== null || p.active !== null) phases[name] = p;
  }
  const targets = COLD_TARGETS.filter((t) => variants[t.subject] !== undefined && variants[t.base] !== undefined).map((t): TargetResult => {
    const ratioOfMedians = (variants[t.subject] as Spread).median / (variants[t.base] as Spread).median;
    return { ...t, ratioOfMedians, medianOfRoundRatios: pairedRatio(samples, t.subject, t.base), ok: ratioOfMedians <= t.max };
  });
  let ownStart: OwnStartResult | null = null;
  if (own !== null && own.podsock.length > 0 && own.stub.length > 0 && own.node.length > 0) {
    const podsock = spread(own.podsock);
    const stub = spread(own.stub);
    const node = spread(own.node);
    const difference = podsock.median - stub.median - node.median;
    const runs = Math.min(own.podsock.length, own.stub.length, own.node.length);
    const perRun = Array.from({ length: runs }, (_, i) => (own.podsock[i] as number) - (own.stub[i] as number) - (own.node[i] as number));
    ownStart = { podsock, stub, node, difference, medianOfRunDifferences: median(perRun), margin: OWN_START_MARGIN_MS, ok: difference <= OWN_START_MARGIN_MS };
  }
  return { variants, phases, targets, ownStart };
}

const ms = (v: number): string => v.toFixed(1);
const verdict = (ok: boolean | null): string => (ok === null ? 'n/a' : ok ? 'ok' : 'MISSED');

/** The summary as text: a table of first-byte times, one line per target, and the own-start lines. */
export function formatSummary(s: ColdSummary): string {
  const out: string[] = [];
  const names = Object.keys(s.variants);
  if (names.length > 0) {
    const rows = [['first byte (ms)', 'median', 'min', 'max', 'n']];
    for (const name of names) {
      const v = s.variants[name] as Spread;
      rows.push([name, ms(v.median), ms(v.min), ms(v.max), String(v.n)]);
    }
    out.push(table(rows));
  }
  const phased = names.filter((n) => s.phases[n] !== undefined);
  if (phased.length > 0) {
    const rows = [['after connect (median ms)', 'service forked', 'active', 'first byte']];
    const cell = (v: number | null): string => (v === null ? '-' : ms(v));
    for (const name of phased) {
      const p = s.phases[name] as Phases;
      rows.push([name, cell(p.exec), cell(p.active), ms((s.variants[name] as Spread).median)]);
    }
    out.push(table(rows));
  }
  for (const t of s.targets) {
    out.push(
      `${t.subject}/${t.base} ${formatRatio(t.ratioOfMedians)} <= ${t.max.toFixed(2)}x ${verdict(t.ok)}` +
        ` (median of per-round ratios ${formatRatio(t.medianOfRoundRatios)})`,
    );
  }
  const o = s.ownStart;
  if (o !== null) {
    out.push(
      table([
        ['own start (ms)', 'median', 'min', 'max', 'n'],
        ['podsock exec -> podman', ms(o.podsock.median), ms(o.podsock.min), ms(o.podsock.max), String(o.podsock.n)],
        ['  of which podman stub', ms(o.stub.median), ms(o.stub.min), ms(o.stub.max), String(o.stub.n)],
        ['node -e 0', ms(o.node.median), ms(o.node.min), ms(o.node.max), String(o.node.n)],
      ]),
    );
    const signed = (v: number): string => `${v >= 0 ? '+' : ''}${ms(v)}`;
    out.push(
      `podsock - stub - node -e 0 = ${signed(o.difference)} ms <= +${o.margin} ms ${verdict(o.ok)}` +
        ` (median of per-run differences ${signed(o.medianOfRunDifferences)} ms)`,
    );
  }
  return out.join('\n');
}
