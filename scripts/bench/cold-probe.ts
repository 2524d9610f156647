/**
 * The cold-start benchmark's one measurement over the network: connect to an activating socket,
 * send `GET /1k HTTP/1.0`, and time connect() to the first byte of the reply.
 */
import net from 'node:net';
import { checkReply } from './cold-summary.js';

/** The request every sample sends; nginx closes after the reply (HTTP/1.0 without keep-alive). */
export const COLD_REQUEST = 'GET /1k HTTP/1.0\r\nHost: localhost\r\n\r\n';
/** The body /1k serves (build-nginx-image.sh). */
export const COLD_BODY_BYTES = 1024;
/** The most of a reply kept: a 1 KiB body plus nginx's headers fit many times over. */
const MAX_REPLY_BYTES = 64 * 1024;

/** One sample: when connect() was called, and how long the first byte of the reply took. */
export interface FirstByte {
  /** CLOCK_MONOTONIC in ns (process.hrtime; systemd's *TimestampMonotonic use the same clock). */
  connectNs: bigint;
  ms: number;
}

/**
 * Time from just before connect() to the first byte of the reply, after checking that the whole
 * reply is a 200 with the 1 KiB body. Rejects when no complete reply arrives within `timeoutMs`,
 * when the peer resets, or when the reply is not the expected one.
 */
export function firstByte(port: number, timeoutMs: number): Promise<FirstByte> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let t1: bigint | null = null;
    const t0 = process.hrtime.bigint();
    const sock = net.connect({ host: '127.0.0.1', port });
    const fail = (err: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error(`no complete reply on 127.0.0.1:${port} within ${timeoutMs} ms (${size} bytes so far)`)), timeoutMs);
    sock.once('connect', () => sock.write(COLD_REQUEST));
    sock.on('data', (d: Buffer) => {
      t1 ??= process.hrtime.bigint();
      size += d.length;
      if (size > MAX_REPLY_BYTES) return fail(new Error(`reply on 127.0.0.1:${port} longer than ${MAX_REPLY_BYTES} bytes`));
      chunks.push(d);
    });
    sock.once('error', fail);
    sock.once('end', () => {
      clearTimeout(timer);
      sock.destroy();
      const problem = checkReply(Buffer.concat(chunks).toString('latin1'), COLD_BODY_BYTES);
      if (problem !== null) reject(new Error(`127.0.0.1:${port}: ${problem}`));
      else if (t1 === null) reject(new Error(`127.0.0.1:${port} closed without a reply`));
      else resolve({ connectNs: t0, ms: Number(t1 - t0) / 1e6 });
    });
  });
}
