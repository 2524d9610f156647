/**
 * One timed HTTP/1.0 GET over a fresh TCP connection, for the demo's "first byte after N ms". A raw
 * socket rather than node:http, so the clock stops at the first byte on the wire, not after the
 * headers are parsed. Bounded: the reply is capped and the whole exchange has a deadline.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { PodsockError, q } from '../errors.js';

/** Largest reply the demo reads; its page is a few dozen bytes. */
export const MAX_REPLY_BYTES = 64 * 1024;

/** A complete reply and when its first byte came. */
export interface TimedReply {
  status: number;
  body: string;
  /** From the start of the connect to the first byte of the reply. */
  firstByteMs: number;
}

/**
 * Split a complete HTTP/1.x reply into status and body. Throws PODSOCK_ERR_DEMO when it is not one
 * (no status line, or no blank line after the headers).
 */
export function parseHttpReply(raw: Buffer): { status: number; body: string } {
  const text = raw.toString('latin1');
  const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r?\n/.exec(text);
  const sep = /\r?\n\r?\n/.exec(text);
  if (m === null || sep === null) {
    throw new PodsockError('PODSOCK_ERR_DEMO', `Not an HTTP reply: ${q(text.slice(0, 80))}`);
  }
  // latin1 maps bytes 1:1 to UTF-16 units, so a string index is a byte offset.
  const bodyStart = sep.index + sep[0].length;
  return { status: Number(m[1]), body: raw.subarray(bodyStart).toString('utf8') };
}

/**
 * GET `path` from `host:port` and time the first byte. Rejects with PODSOCK_ERR_DEMO on a connection
 * error, a reply over MAX_REPLY_BYTES, a malformed reply, or when it all takes longer than `timeoutMs`.
 */
export function timedGet(host: string, port: number, path: string, timeoutMs: number): Promise<TimedReply> {
  const url = `http://${host}:${port}${path}`;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let firstByteMs: number | null = null;
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (why: string, cause?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      reject(new PodsockError('PODSOCK_ERR_DEMO', `GET ${q(url)} failed: ${why}`, cause === undefined ? {} : { cause }));
    };
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => fail(`no complete reply within ${timeoutMs} ms`), timeoutMs);
    sock.on('connect', () => sock.write(`GET ${path} HTTP/1.0\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`));
    sock.on('data', (chunk: Buffer) => {
      firstByteMs ??= performance.now() - started;
      size += chunk.length;
      if (size > MAX_REPLY_BYTES) return fail(`reply larger than ${MAX_REPLY_BYTES} bytes`);
      chunks.push(chunk);
    });
    sock.on('error', (err) => fail(err.message, err));
    sock.on('end', () => {
      if (settled) return;
      if (firstByteMs === null) return fail('the connection closed without a reply');
      try {
        const reply = parseHttpReply(Buffer.concat(chunks));
        settled = true;
        clearTimeout(timer);
        sock.destroy();
        resolve({ ...reply, firstByteMs });
      } catch (err) {
        fail((err as Error).message, err);
      }
    });
  });
}
