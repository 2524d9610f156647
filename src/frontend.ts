/**
 * How the supervisor sees client connections, whatever the mode:
 * - handover: the container accepts; podsock only counts connections in the kernel (idle/handover-frontend.ts);
 * - proxy: podsock accepts, holds connections until the container is ready, then pipes them (proxy/proxy-frontend.ts).
 * The activation (activation/activation.ts) drives the idle timer from `onActivity` and never needs to know which one it has.
 */
export interface Backend {
  host: string;
  port: number;
  /** Where UDP flows go when it is not `port` (rootless: TCP and UDP are published on different host ports). */
  udpPort?: number;
  /** Connect from inside this network namespace (an open /proc/PID/ns/net, runtime/container-netns.ts). */
  netns?: number;
}

export interface Frontend {
  /** Begin watching/accepting. Connections that arrive before `ready()` are held (proxy) or queued by the kernel. */
  start(): Promise<void>;
  /** Standalone mode: resolve true when a client is waiting, false if `signal` aborts first. */
  waitForConnection(signal: AbortSignal): Promise<boolean>;
  /** The container is ready: serve (proxy: connect held and new connections to `backends`, in listener order). */
  ready(backends: Backend[]): void;
  /** The container is gone: hold new connections again. */
  notReady(): void;
  /** Receive the number of active connections whenever it changes (null: stop reporting). */
  onActivity(cb: ((active: number) => void) | null): void;
  /** Current number of active connections. */
  activeCount(): number;
  /** Stop taking connections; they stay in the kernel backlog (never shutdown(), never unlink). */
  stopAccepting(): Promise<void>;
  /** Wait (bounded) for active connections to finish. */
  drain(timeoutMs: number): Promise<void>;
  /** Release everything. Idempotent. */
  close(): Promise<void>;
}
