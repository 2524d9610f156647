// How a socket ended, and the process's open fds, for the tests of the native relay.
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import type { Socket } from 'node:net';

/** Everything `s` receives until its end. */
export function readToEnd(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  s.on('data', (d: Buffer) => chunks.push(d));
  return once(s, 'end').then(() => Buffer.concat(chunks));
}

/** The code of the error `s` ended with (ECONNRESET...), or undefined for a clean close; resolves at 'close'. */
export function errorCodeAtClose(s: Socket): Promise<string | undefined> {
  let code: string | undefined;
  s.on('error', (e: NodeJS.ErrnoException) => (code = e.code));
  // Not events.once(s, 'close'): it rejects on the 'error' this is waiting to record.
  return new Promise((resolve) => s.once('close', () => resolve(code)));
}

/** How many fds this process has open now. */
export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}
