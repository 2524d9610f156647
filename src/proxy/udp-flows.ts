/**
 * Proxy mode's datagram sockets: one native flow engine per UDP socket (native/udp-proxy.c through
 * native/udp-proxy.ts). The engine reads every datagram itself; before the container is ready it queues
 * them (bounded, oldest dropped first), once ready it opens one upstream socket per client address (a
 * flow) and relays the replies, and a flow ends after FlowTimeout= without traffic. JS hears only when
 * the number of flows changes, so the service is busy while any flow lives: its count is part of the
 * frontend's activity (proxy-frontend.ts).
 */
import { EventEmitter } from 'node:events';
import type { PodsockError } from '../errors.js';
import { q } from '../errors.js';
import type { Backend } from '../frontend.js';
import type { ListenFd } from '../sd/listen-fds.js';
import type { UdpProxyEvent, UdpProxyOptions } from '../native/udp-proxy.js';
import { closeFd, dupFd } from '../native/fds.js';

/** What the frontend needs of one engine (native/udp-proxy.ts's UdpProxy). */
export interface UdpEngine {
  setTarget(target: { host: string; port: number; netns?: number }): void;
  unsetTarget(): void;
  close(): void;
}

/** What an engine reports (native/udp-proxy.ts). */
export type UdpEngineEvent = UdpProxyEvent;

export type UdpEngineOptions = Required<Pick<UdpProxyOptions, 'flowTimeoutMs' | 'maxFlows' | 'proxyV2'>>;

/** Opens an engine on (a dup of) a UDP socket; the engine owns that fd. */
export type OpenUdpEngine = (fd: number, options: UdpEngineOptions, onEvent: (e: UdpEngineEvent) => void) => UdpEngine;

export interface UdpFlowsOptions {
  listeners: readonly ListenFd[];
  /** Per socket: its options (FlowTimeout=, MaxFlows=, ProxyProtocol=). */
  options: (l: ListenFd) => UdpEngineOptions;
  /** The backend (by its index in the ready() list) that serves socket `name`. */
  backendIndex: (name: string) => number;
  open: OpenUdpEngine;
}

interface Slot {
  listener: ListenFd;
  engine: UdpEngine | null;
  flows: number;
  queued: number;
}

/** Running totals of datagrams an engine lost (its 'drop' event). */
export interface UdpLosses {
  /** The cold-start queue was full: the oldest went. */
  dropped: number;
  /** Larger than 65535 bytes. */
  truncated: number;
  /** No flow could be made (EMFILE...) or a send failed. */
  failed: number;
}

/**
 * The engines of a service's UDP sockets. Events: 'count' (the activity changed: flows, plus one per
 * socket with datagrams queued), 'loss' (socket name, running totals of lost datagrams, at most one a
 * second per socket), 'error' (an engine stopped; the socket is served no more until the next activation).
 */
export class UdpFlows extends EventEmitter<{ count: [n: number]; loss: [socket: string, totals: UdpLosses]; error: [err: PodsockError, socket: string] }> {
  private readonly o: UdpFlowsOptions;
  private readonly slots: Slot[];

  constructor(o: UdpFlowsOptions) {
    super();
    this.o = o;
    this.slots = o.listeners.map((listener) => ({ listener, engine: null, flows: 0, queued: 0 }));
  }

  /** Start reading every socket (datagrams are queued until ready()). Throws PODSOCK_ERR_NATIVE. */
  start(): void {
    for (const slot of this.slots) {
      if (slot.engine !== null) continue;
      // The engine owns a dup: podsock never closes (or shuts down) systemd's own socket.
      const fd = dupFd(slot.listener.fd);
      try {
        slot.engine = this.o.open(fd, this.o.options(slot.listener), (e) => this.onEvent(slot, e));
      } catch (err) {
        closeFd(fd);
        throw err;
      }
    }
  }

  /** Flows now, plus one for each socket holding queued datagrams. */
  get activeCount(): number {
    let n = 0;
    for (const s of this.slots) n += s.flows + (s.queued > 0 ? 1 : 0);
    return n;
  }

  ready(backends: readonly Backend[]): void {
    for (const slot of this.slots) {
      const b = backends[this.o.backendIndex(slot.listener.name)] ?? backends[0];
      if (b === undefined || slot.engine === null) continue;
      const port = b.udpPort ?? b.port;
      slot.engine.setTarget(b.netns === undefined ? { host: b.host, port } : { host: b.host, port, netns: b.netns });
    }
  }

  notReady(): void {
    for (const slot of this.slots) slot.engine?.unsetTarget();
  }

  /** Stop reading: what is not read yet stays in the socket for the next activation. Idempotent. */
  close(): void {
    for (const slot of this.slots) {
      const e = slot.engine;
      slot.engine = null;
      e?.close();
      const before = this.activeCount;
      slot.flows = 0;
      slot.queued = 0;
      if (this.activeCount !== before) this.emit('count', this.activeCount);
    }
  }

  private onEvent(slot: Slot, e: UdpEngineEvent): void {
    if (slot.engine === null && e.type !== 'error') return;
    switch (e.type) {
      case 'count': {
        const before = this.activeCount;
        slot.flows = e.flows;
        slot.queued = e.queued;
        if (this.activeCount !== before) this.emit('count', this.activeCount);
        return;
      }
      case 'drop':
        this.emit('loss', slot.listener.name, { dropped: e.dropped, truncated: e.truncated, failed: e.failed });
        return;
      case 'error':
        this.emit('error', e.error, slot.listener.name);
        return;
    }
  }
}

/** The log line for an engine's losses so far. */
export function lossMessage(socket: string, l: UdpLosses): string {
  const parts: string[] = [];
  if (l.dropped > 0) parts.push(`${l.dropped} dropped while the container was starting (the queue was full; the oldest go first)`);
  if (l.truncated > 0) parts.push(`${l.truncated} larger than 65535 bytes`);
  if (l.failed > 0) parts.push(`${l.failed} not sent (no flow could be opened, or the send failed)`);
  return `Socket ${q(socket)}: datagrams lost so far: ${parts.join('; ')}`;
}
