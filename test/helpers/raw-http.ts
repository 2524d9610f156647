// One HTTP/1.0 request written by hand on a socket the caller opens: the tests that choose where a
// connection comes from (a local address, a unix socket) or count refusals and resets use it.
import type net from 'node:net';

/**
 * Writes `GET path HTTP/1.0` on `s` once it connects and resolves with everything the peer sent
 * until its end, status line and headers included. Rejects on a reset or refusal, and destroys the
 * socket with 'timeout on PATH' after `timeoutMs`.
 */
export function rawHttpGet(s: net.Socket, path: string, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => s.destroy(new Error(`timeout on ${path}`)), timeoutMs);
    s.on('connect', () => s.write(`GET ${path} HTTP/1.0\r\nHost: x\r\n\r\n`));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString());
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
