/**
 * The per-connection data path: shovel bytes between a client socket and an upstream socket.
 *
 * What systemd-socket-proxyd gets wrong and this gets right (systemd's src/socket-proxy/socket-proxyd.c
 * closes a side at its EOF instead of shutting it down for writing):
 * - half-close: EOF on one side becomes end() (shutdown(SHUT_WR)) on the other while the opposite
 *   direction keeps flowing, so `echo x | nc` style and EOF-delimited protocols get their reply;
 * - an abortive close (reset, error) on one side resets the other: a truncated stream must not
 *   look like a clean EOF to the peer;
 * - buffering is bounded by the sockets' highWaterMark: when a write is not accepted the reading
 *   side is paused until 'drain', and a paused net.Socket stops reading from the kernel once its
 *   readable buffer reaches highWaterMark, so TCP flow control pushes back on the sender.
 *
 * Deliberately a hand-written 'data'/'drain' loop rather than stream.pipeline(): pipeline ends the
 * destination on the source's end but also tears everything down on the first side that finishes,
 * which breaks half-close, and it adds per-chunk work we do not need.
 */
import type { Socket } from 'node:net';

/** Why a piped connection ended: null for a clean finish in both directions, else the first error. */
export type PipeResult = Error | null;

/**
 * Pipe `client` and `upstream` in both directions until both sockets have closed, then call
 * `onDone` once with the first error seen on either side (or null when both directions finished
 * cleanly). Both sockets must have been created with `allowHalfOpen: true` and be connected. The
 * pipe takes ownership: it destroys both sockets on error, and an external destroy() of one side
 * (e.g. the proxy shutting down) resets the other. Returns nothing; progress is observable only
 * through the sockets and `onDone`.
 */
export function pipeSockets(client: Socket, upstream: Socket, onDone: (result: PipeResult) => void): void {
  let firstError: Error | null = null;
  let open = 2;

  const abort = (err: Error | null): void => {
    if (err && !firstError) firstError = err;
    resetOrDestroy(client);
    resetOrDestroy(upstream);
  };

  const onClose = (socket: Socket) => (): void => {
    // A socket that closed after both of its directions ended is done; anything else (an error,
    // or a destroy() from outside) means the stream was cut and the other side must see that.
    if (!(socket.readableEnded && socket.writableFinished)) abort(null);
    if (--open === 0) onDone(firstError);
  };

  forward(client, upstream);
  forward(upstream, client);
  client.on('error', abort);
  upstream.on('error', abort);
  client.once('close', onClose(client));
  upstream.once('close', onClose(upstream));
  // Bytes that arrived before the upstream was connected are sitting in client's readable buffer;
  // attaching 'data' listeners switched both sockets to flowing mode, so they go out first, in order.
}

function forward(from: Socket, to: Socket): void {
  const resume = (): void => {
    from.resume();
  };
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) from.pause();
  });
  to.on('drain', resume);
  // A client that closed while it was held has already emitted 'end' (Node emits it at EOF when
  // nothing is buffered, even without a reader): pass that EOF on now, or the upstream never learns.
  if (from.readableEnded) to.end();
  else
    from.once('end', () => {
      to.end();
    });
}

/**
 * Close `socket` abortively: a TCP reset when it is a TCP socket (so the peer sees ECONNRESET, not
 * an EOF that could pass for a complete reply), a plain destroy otherwise. Safe on a destroyed socket.
 */
export function resetOrDestroy(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    // ERR_INVALID_HANDLE_TYPE: not a TCP socket (a unix socket has no reset); close it instead.
    socket.destroy();
  }
}
