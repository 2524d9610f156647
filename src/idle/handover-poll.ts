/**
 * How often handover mode samples the kernel's connection counts (handover-frontend.ts): a quarter of
 * the idle timeout, so that the service stops at most a quarter of it late, kept between 100 ms and
 * 1 s; without an idle timeout ('infinity'), 1 s. Pure.
 */

/** Fastest and slowest sampling. */
export const MIN_HANDOVER_POLL_MS = 100;
export const MAX_HANDOVER_POLL_MS = 1000;

/** The sampling interval for an idle timeout in ms (null = never idle). */
export function handoverPollMs(idleTimeoutMs: number | null): number {
  return Math.min(MAX_HANDOVER_POLL_MS, Math.max(MIN_HANDOVER_POLL_MS, Math.floor((idleTimeoutMs ?? 4000) / 4)));
}
