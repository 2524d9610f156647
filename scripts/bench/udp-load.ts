/**
 * The UDP benchmark's request/response load: `clients` sockets, each with exactly one datagram in
 * flight. A datagram carries its client's sequence number; only the answer to the current one counts
 * and sends the next. A client whose answer has not come within `resendMs` (a datagram lost on the
 * way) sends a new one with the next number, and an answer that comes late for an old number is
 * ignored, so no client ever has two numbers that would each send on.
 */
import { createSocket, type Socket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';

export interface UdpTarget {
  host: string;
  port: number;
}

export interface RrResult {
  /** Answered round trips per second. */
  rate: number;
  answered: number;
  /** Datagrams sent again after `resendMs` without an answer. */
  resent: number;
  /** Answers that came for a number already given up. */
  late: number;
}

export async function udpSocket(): Promise<Socket> {
  const s = createSocket({ type: 'udp4', recvBufferSize: 1 << 20, sendBufferSize: 1 << 20 });
  // Any address: a target on podman's bridge cannot be reached from a socket bound to 127.0.0.1.
  await new Promise<void>((resolve) => s.bind(0, resolve));
  return s;
}

/** 64 bytes: 'e' (udp-echo.js echoes these), then the sequence number. */
function datagram(seq: number): Buffer {
  const b = Buffer.alloc(64, 'e');
  b.writeUInt32BE(seq, 1);
  return b;
}

/** Round trips per second over `durationMs`, `clients` datagrams in flight. */
export async function requestResponse(t: UdpTarget, clients: number, durationMs: number, resendMs = 200): Promise<RrResult> {
  const socks = await Promise.all(Array.from({ length: clients }, udpSocket));
  const seq = socks.map(() => 0);
  const sentAt = socks.map(() => 0);
  let answered = 0;
  let resent = 0;
  let late = 0;
  let running = true;
  const send = (i: number): void => {
    seq[i]!++;
    sentAt[i] = performance.now();
    socks[i]!.send(datagram(seq[i]!), t.port, t.host);
  };
  socks.forEach((s, i) =>
    s.on('message', (m) => {
      if (m.length < 5 || m.readUInt32BE(1) !== seq[i]) {
        late++;
        return;
      }
      answered++;
      if (running) send(i);
    }),
  );
  const watch = setInterval(() => {
    const now = performance.now();
    socks.forEach((_, i) => {
      if (running && now - sentAt[i]! >= resendMs) {
        resent++;
        send(i);
      }
    });
  }, Math.max(1, Math.floor(resendMs / 4)));
  const start = performance.now();
  socks.forEach((_, i) => send(i));
  await sleep(durationMs);
  running = false;
  const seconds = (performance.now() - start) / 1000;
  clearInterval(watch);
  socks.forEach((s) => s.close());
  return { rate: answered / seconds, answered, resent, late };
}
