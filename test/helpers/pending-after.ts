// Whether a promise is still unsettled after a while, for tests that expect something not to happen yet.

/** True when `p` has not resolved `ms` milliseconds from now, false when it resolved before (a rejection rejects). */
export function pendingAfter<T>(p: Promise<T>, ms: number): Promise<boolean> {
  return Promise.race([p.then(() => false), new Promise<boolean>((resolve) => setTimeout(() => resolve(true), ms))]);
}
