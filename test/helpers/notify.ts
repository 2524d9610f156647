// A real NotifyServer that records what it delivered and dropped, for the notify tests.
import type { Test } from 'tap';
import { NotifyServer, type NotifyDrop, type NotifyMessage } from '../../src/sd/notify-server.js';
import { tmpDir } from './tmp-dir.js';

/**
 * A NotifyServer in a fresh temporary directory, closed when `t` ends, recording what it delivered
 * (`messages`) and dropped (`drops`); `delivered(n)` waits until `n` messages came in total.
 */
export async function notifyServer(t: Test, limits: { maxPerSecond?: number; burst?: number } = {}) {
  const messages: NotifyMessage[] = [];
  const drops: NotifyDrop[] = [];
  let wake: (() => void) | null = null;
  const server = await NotifyServer.create({
    parentDir: tmpDir(t, 'podsock-notify-'),
    ...limits,
    onMessage: (m) => {
      messages.push(m);
      wake?.();
    },
    onDrop: (d) => drops.push(d),
  });
  t.teardown(() => server.close());
  const delivered = async (n: number): Promise<NotifyMessage[]> => {
    while (messages.length < n) await new Promise<void>((r) => (wake = r));
    return messages;
  };
  return { server, messages, drops, delivered };
}
