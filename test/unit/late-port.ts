/**
 * A loopback port nothing listens on, for a test that expects refusals or starts listening on it
 * only later. A port freed after listen(0) lies in the kernel's ephemeral range, where any connect()
 * (the probes themselves: a probe whose source port is that port connects to itself) or a listen(0)
 * of a test running in parallel may take it meanwhile; one below that range is taken only by a
 * process that asks for it by number.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export async function latePort(): Promise<number> {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const top = Number.isInteger(low) && low > 2048 ? low : 32768;
  for (let i = 0; i < 100; i++) {
    const port = 1024 + Math.floor(Math.random() * (top - 1024));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free loopback port between 1024 and ${top}`);
}
