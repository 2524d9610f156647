/**
 * The closer (native/closer.c): fds passed with notify datagrams, and datagram sockets whose queues may
 * still hold some, are closed on a thread of their own, off the event loop.
 */
import { call } from './addon.js';

/** The state of the queue of fds waiting to be closed off the event loop. */
export interface CloserInfo {
  /** fds waiting in the queue. */
  queued: number;
  /** fds whose close() is running on the closer thread (0 or 1). */
  closing: number;
  /** Slots held for a receive in progress. */
  reserved: number;
  /** The most fds queued or closing at once. */
  capacity: number;
  /** The part of `capacity` passed fds may take; receiving pauses while less than one message's worth is free. */
  peerCapacity: number;
  /** fds closed since the addon was loaded. */
  closed: number;
  /** The closer thread exists (only while there is something to close). */
  running: boolean;
}

interface CloserBinding {
  closerInfo(): CloserInfo;
}

/** The state of the closer's queue (see {@link CloserInfo}). Throws PODSOCK_ERR_NATIVE. */
export function closerInfo(): CloserInfo {
  return call('closer info', undefined, (b: CloserBinding) => b.closerInfo());
}
