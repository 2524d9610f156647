// Building test drivers of the C sources with AddressSanitizer and UndefinedBehaviorSanitizer.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** gcc flags: both sanitizers, any report fatal, stacks that name the line. */
export const SANITIZE = ['-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer', '-g', '-O1'];

/** The environment a sanitized driver runs with: leaks reported, the first UB report ends it. */
export const SANITIZER_OPTIONS = { ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' };

/** Why gcc cannot build with SANITIZE here (tried on an empty program in `dir`), or null. */
export function whySanitizersUnusable(dir: string): string | null {
  const probe = join(dir, 'probe.c');
  writeFileSync(probe, 'int main(void) { return 0; }\n');
  const r = spawnSync('gcc', [...SANITIZE, probe, '-o', join(dir, 'probe')], { encoding: 'utf8' });
  if (r.error !== undefined) return `gcc cannot be run (${r.error.message})`;
  if (r.status !== 0) return `gcc cannot build with -fsanitize=address,undefined: ${r.stderr.trim().split('\n')[0] ?? ''}`;
  return null;
}
