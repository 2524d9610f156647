/**
 * A benchmark interrupted by SIGINT or SIGTERM removes what it installed before it exits: the units,
 * containers and files of a half-finished run would otherwise stay on the machine.
 */

/**
 * On the first SIGINT or SIGTERM: says so on stderr, runs `cleanup` and exits 130. Returns a check for
 * the measuring loop, which throws 'Interrupted by SIGNAL' once a signal came, so no new sample starts
 * while the cleanup runs.
 */
export function cleanUpOnSignals(cleanup: () => Promise<void>): () => void {
  let interrupted: NodeJS.Signals | null = null;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      interrupted = sig;
      console.error(`${sig}: removing the benchmark's units and containers`);
      void cleanup().then(() => process.exit(130));
    });
  }
  return () => {
    if (interrupted !== null) throw new Error(`Interrupted by ${interrupted}`);
  };
}
