/**
 * Whether the podsock that wrote a status file still runs: its pid must exist (kill(2) with signal 0:
 * ESRCH means gone, EPERM means it exists as another user's) and, when its start time was recorded,
 * still have that start time, so that a pid the kernel gave to another process since does not count
 * (proc(5), /proc/PID/stat field 22, "starttime").
 */
import { readFileSync } from 'node:fs';

/** Field 22 of a /proc/PID/stat line, or null. The command name (field 2) may hold spaces and ')'. Pure. */
export function startTimeOfStat(stat: string): string | null {
  const close = stat.lastIndexOf(')');
  if (close === -1) return null;
  // Fields from 3 on follow the command name; starttime is the 22nd field, the 20th of those.
  const value = stat.slice(close + 2).split(' ')[19];
  return value !== undefined && /^\d{1,20}$/.test(value) ? value : null;
}

/** The start time of process `pid` in clock ticks since boot, or null when it cannot be read. */
export function processStartTime(pid: number | 'self'): string | null {
  try {
    return startTimeOfStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** Whether process `pid` exists and, when `start` is given, started at `start`. */
export function processAlive(pid: number, start: string | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (start === null) return true;
  // Unreadable (hidepid=, proc(5)): kill(2) is all there is to go by.
  const now = processStartTime(pid);
  return now === null || now === start;
}
