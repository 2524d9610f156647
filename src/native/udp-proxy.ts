/**
 * The UDP proxy engine (native/udp-proxy.c): proxy mode's data path for a datagram socket. A flow per
 * client address, each with its own upstream socket connected to the backend; a bounded queue for what
 * arrives before the backend is known; no JS per datagram.
 */
import { isIP } from '../ip.js';
import type { PodsockError } from '../errors.js';
import { binding, call, checkFd, checkInt, invalid, nativeError, type RawError } from './addon.js';

declare const udpProxyHandleBrand: unique symbol;
type UdpProxyHandle = { readonly [udpProxyHandleBrand]: true };

/** What the engine tells JS: counts when they change, drops (at most one event a second), a fatal error. */
export type UdpProxyEvent =
  /** The number of flows changed, or the queue went from empty to not empty or back. */
  | { type: 'count'; flows: number; queued: number }
  /** Running totals of lost datagrams: queue full (oldest dropped), larger than 65535 bytes, no flow could be made or sent. */
  | { type: 'drop'; dropped: number; truncated: number; failed: number }
  /** Receiving on the listening socket failed: the engine stopped (it still has to be closed). */
  | { type: 'error'; error: PodsockError };

/** The engine's counters (UdpProxy.info()). "In" is from clients, "out" is replies to clients. */
export interface UdpProxyInfo {
  /** Open and receiving (false after close() or an error event). */
  active: boolean;
  hasTarget: boolean;
  flows: number;
  queued: number;
  queuedBytes: number;
  /** Queued datagrams dropped, oldest first, because the queue was full. */
  dropped: number;
  /** Flows closed to make room at maxFlows (the least recently active). */
  evicted: number;
  /** Flows closed after flowTimeoutMs without traffic either way. */
  expired: number;
  /** Datagrams larger than 65535 bytes (MSG_TRUNC), dropped. */
  truncated: number;
  /** ICMP port unreachable seen on a flow (retried while the backend had not answered yet). */
  refused: number;
  /** Datagrams lost because no flow could be made (EMFILE...) or a send failed (EAGAIN...). */
  failed: number;
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
}

export interface UdpProxyOptions {
  /** A flow closes after this long without traffic in either direction. Default UDP_FLOW_TIMEOUT_MS. */
  flowTimeoutMs?: number;
  /** At most this many flows; a new client then closes the least recently active one. Default UDP_MAX_FLOWS. */
  maxFlows?: number;
  /** Datagrams queued before setTarget(), at most. Default UDP_QUEUE_DATAGRAMS. */
  queueDatagrams?: number;
  /** Bytes queued before setTarget(), at most; also what all flows together keep for resending after ICMP port unreachable. Default UDP_QUEUE_BYTES. */
  queueBytes?: number;
  /** Prefix every datagram sent to the backend with a PROXY protocol v2 header (DGRAM). Default false. */
  proxyV2?: boolean;
}

/** Defaults of UdpProxyOptions. */
export const UDP_FLOW_TIMEOUT_MS = 30_000;
export const UDP_MAX_FLOWS = 1024;
export const UDP_QUEUE_DATAGRAMS = 256;
export const UDP_QUEUE_BYTES = 1024 * 1024;
/** Bounds of UdpProxyOptions (native/udp-flows.h UDP_FLOWS_MAX, native/udp-proxy.c). */
export const UDP_LIMITS = Object.freeze({ flowTimeoutMs: 0x7fffffff, maxFlows: 65536, queueDatagrams: 65536, queueBytes: 64 * 1024 * 1024 });

/** Where the backend is: a numeric IPv4 or IPv6 address and a port, reached from a network namespace. */
export interface UdpTarget {
  host: string;
  port: number;
  /** An open /proc/PID/ns/net (netnsOpen); the engine keeps its own dup. Absent: podsock's own namespace. */
  netns?: number;
}

interface UdpProxyBinding {
  udpProxyOpen(
    fd: number,
    flowTimeoutMs: number,
    maxFlows: number,
    queueDatagrams: number,
    queueBytes: number,
    proxyV2: boolean,
    onEvent: (event: RawEvent) => void,
  ): UdpProxyHandle;
  udpProxySetTarget(handle: UdpProxyHandle, host: string, port: number, netnsFd: number): void;
  udpProxyUnsetTarget(handle: UdpProxyHandle): void;
  udpProxyInfo(handle: UdpProxyHandle): UdpProxyInfo;
  udpProxyClose(handle: UdpProxyHandle): void;
}

type RawEvent = { type: 'count'; flows: number; queued: number } | { type: 'drop'; dropped: number; truncated: number; failed: number } | { type: 'error'; error: RawError };

/**
 * A running UDP proxy engine (see udpProxyOpen()). close() closes the listening fd, every flow's socket
 * and the queue; idempotent, and callable from inside onEvent (no event follows).
 */
export class UdpProxy {
  readonly #handle: UdpProxyHandle;
  readonly #address: string;

  /** @internal use udpProxyOpen() */
  constructor(handle: UdpProxyHandle, address: string) {
    this.#handle = handle;
    this.#address = address;
  }

  /**
   * Send to `target` from now on: flows to a previous target close, the queue is delivered in arrival
   * order (its count event follows from the loop, never from inside this call). Throws
   * PODSOCK_ERR_NATIVE for a host that is not a numeric IP, a port outside 1 to 65535, a bad netns fd,
   * or a closed engine (EBADF).
   */
  setTarget(target: UdpTarget): void {
    const operation = 'set the UDP proxy target of fd';
    if (isIP(target.host) === 0) throw invalid(operation, this.#address, `expected the host to be a numeric IPv4 or IPv6 address, got '${target.host}'`);
    checkInt(operation, this.#address, 'the port', target.port, 65535);
    if (target.port < 1) throw invalid(operation, this.#address, `expected the port to be an integer from 1 to 65535, got '${target.port}'`);
    if (target.netns !== undefined) checkFd(operation, target.netns);
    call(operation, this.#address, (b: UdpProxyBinding) => b.udpProxySetTarget(this.#handle, target.host, target.port, target.netns ?? -1));
  }

  /** The backend is gone (stopped or restarting): close every flow; datagrams queue again. */
  unsetTarget(): void {
    binding<UdpProxyBinding>().udpProxyUnsetTarget(this.#handle);
  }

  info(): UdpProxyInfo {
    return binding<UdpProxyBinding>().udpProxyInfo(this.#handle);
  }

  close(): void {
    binding<UdpProxyBinding>().udpProxyClose(this.#handle);
  }
}

/** Fill in the defaults and check every option against its bounds (PODSOCK_ERR_NATIVE, EINVAL). */
function resolveOptions(operation: string, address: string, options: UdpProxyOptions): Required<UdpProxyOptions> {
  const o = {
    flowTimeoutMs: options.flowTimeoutMs ?? UDP_FLOW_TIMEOUT_MS,
    maxFlows: options.maxFlows ?? UDP_MAX_FLOWS,
    queueDatagrams: options.queueDatagrams ?? UDP_QUEUE_DATAGRAMS,
    queueBytes: options.queueBytes ?? UDP_QUEUE_BYTES,
    proxyV2: options.proxyV2 ?? false,
  };
  checkInt(operation, address, 'flowTimeoutMs', o.flowTimeoutMs, UDP_LIMITS.flowTimeoutMs);
  checkInt(operation, address, 'maxFlows', o.maxFlows, UDP_LIMITS.maxFlows);
  checkInt(operation, address, 'queueDatagrams', o.queueDatagrams, UDP_LIMITS.queueDatagrams);
  checkInt(operation, address, 'queueBytes', o.queueBytes, UDP_LIMITS.queueBytes);
  if (o.flowTimeoutMs < 1) throw invalid(operation, address, `expected flowTimeoutMs to be at least 1, got '${o.flowTimeoutMs}'`);
  if (o.maxFlows < 1) throw invalid(operation, address, `expected maxFlows to be at least 1, got '${o.maxFlows}'`);
  if (typeof o.proxyV2 !== 'boolean') throw invalid(operation, address, `expected proxyV2 to be a boolean, got '${String(o.proxyV2)}'`);
  return o;
}

/**
 * Proxy the bound UDP socket `fd` (IPv4 or IPv6; a dup of systemd's, which the engine owns once this
 * returns and closes, never shuts down): every datagram is read at once and, until setTarget(), queued
 * (bounded by queueDatagrams and queueBytes, the oldest dropped first). A flow per client address sends
 * to the target from its own connected socket; replies go back to the client from the local address it
 * sent to. A flow without a reply yet resends its first datagrams (at most 8 / 64 KiB) after ICMP port
 * unreachable, from 50 ms doubling, for 5 s. `onEvent` gets UdpProxyEvents from the event loop. An open
 * engine keeps the process alive. Throws PODSOCK_ERR_NATIVE (ENOTSOCK for a socket that is not UDP,
 * EINVAL for an option out of bounds); when it throws, the caller still owns `fd`.
 */
export function udpProxyOpen(fd: number, options: UdpProxyOptions, onEvent: (event: UdpProxyEvent) => void): UdpProxy {
  const operation = 'proxy UDP on fd';
  const address = String(fd);
  checkFd(operation, fd);
  const o = resolveOptions(operation, address, options);
  const b = binding<UdpProxyBinding>();
  try {
    const handle = b.udpProxyOpen(fd, o.flowTimeoutMs, o.maxFlows, o.queueDatagrams, o.queueBytes, o.proxyV2, (event) => {
      if (event.type === 'error') onEvent({ type: 'error', error: nativeError('receive on UDP socket fd', address, event.error) });
      else onEvent(event);
    });
    return new UdpProxy(handle, address);
  } catch (err) {
    throw nativeError(operation, address, err);
  }
}
