/*
 * The relay: the proxy's data path, shared by its files (as libuv's internal.h is by src/unix/):
 * relay.c (the core: handles, finishing, onDone, and the JS entry points relayAbort and relayInfo),
 * relay-connect.c (relayConnect: the connect step in front of it), relay-poll.c (the poll engine and the
 * copy/splice path) and relay-uring.c (the io_uring engine, on uring.c).
 *
 * A relay moves bytes between two connected stream sockets in both directions without calling into JS
 * per chunk. The design follows systemd-socket-proxyd (src/socket-proxy/socket-proxyd.c, connection_shovel
 * and connection_enable_event_sources): per direction a bounded buffer, read from one fd and written to
 * the other, and poll interest recomputed from the state after every round:
 * - an fd is watched for READABLE while a direction reading from it has nothing pending (so reading
 *   stops while the other side is not writable: TCP flow control pushes back on the sender), and for
 *   WRITABLE while a direction writing to it has bytes pending;
 * - EOF (read returns 0) becomes shutdown(SHUT_WR) on the other fd once everything read was written,
 *   and the other direction keeps flowing (half-close, which socket-proxyd does not do: it tears the
 *   whole connection down at the first EOF);
 * - any error (ECONNRESET, EPIPE...) closes both fds abortively (SO_LINGER {1, 0}: a TCP reset, socket(7)),
 *   so a truncated stream never looks like a clean EOF to the peer.
 *
 * Each direction starts by copying through a RELAY_BUFFER_BYTES buffer with recv/send (two syscalls per
 * chunk, good for small request/response traffic) and switches to splice(2) through a pipe (zero copy)
 * after `spliceAfter` consecutive reads that filled the whole buffer, i.e. when it is carrying bulk data.
 * spliceAfter 0 splices from the start, a negative value never does.
 *
 * splice(2) cannot take MSG_NOSIGNAL; an EPIPE from it would raise SIGPIPE, which Node ignores
 * process-wide (src/node.cc), so it arrives here as the EPIPE error.
 *
 * Ownership: once connected, the relay owns both fds. The handle JS holds may be dropped at any time;
 * the relay keeps running (and keeps the event loop alive) until both directions ended, an error
 * occurred or relayAbort(handle) was called. Its end is reported exactly once, from a later event-loop
 * iteration, after both fds are closed; the Error carries `code` (the errno name), `errno` and
 * `syscall`. An abort reports null: the connection was cut from outside.
 */
#ifndef PODSOCK_RELAY_H
#define PODSOCK_RELAY_H

#include "handle.h"

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Per-direction copy buffer: one loopback TCP read rarely returns more than this. */
#define RELAY_BUFFER_BYTES (64 * 1024)
/* Pipe size for the splice path (fcntl(2) F_SETPIPE_SZ; socket-proxyd's BUFFER_SIZE). */
#define RELAY_PIPE_BYTES (256 * 1024)
/* Read/write rounds per direction per wake-up: a busy connection yields to the event loop after this. */
#define RELAY_ROUNDS_MAX 8

typedef struct relay relay_t;
typedef struct relay_dir relay_dir_t;

struct relay_dir {
  int from, to;        /* indices into relay_t.fd */
  bool eof;            /* the source sent EOF (or had sent it before the relay took over) */
  bool shut;           /* shutdown(to, SHUT_WR) done */
  bool splicing;       /* through pipe[] with splice(2) rather than through buf */
  int splice_after;    /* consecutive full reads before switching to splice; < 0 never */
  int full_reads;      /* consecutive reads that filled the buffer */
  char *buf;           /* copy path: bytes buf[head, tail) are pending */
  size_t cap, head, tail;
  int pipe[2];         /* splice path: read end, write end */
  size_t pipe_cap;     /* the pipe's real size (F_SETPIPE_SZ rounds up) */
  size_t in_pipe;      /* bytes in the pipe, pending */
  /* io_uring engine (relay_t.uring) */
  relay_t *owner;
  int uop;             /* the operation in flight on this direction: UOP_NONE, UOP_RECV, UOP_SEND or UOP_POLL */
  int ubid;            /* the provided buffer whose bytes are being sent, -1 for none */
  size_t uoff, ulen;   /* bytes of that buffer sent so far, and in all */
  bool uwaiting;       /* in the ring's list of directions waiting for a free buffer (ENOBUFS) */
  relay_dir_t *uprev, *unext;
};

struct relay {
  handle_t h;               /* first: env, onDone / onEvent and its async context, the teardown hook */
  int fd[2];
  uv_poll_t poll[2];
  bool poll_init[2];
  int interest[2];          /* events the poll is started with, 0 when stopped */
  bool rdhup[2];            /* the peer of fd[i] has sent its FIN (EPOLLRDHUP): read on to the EOF */
  relay_dir_t dir[2];       /* dir[0]: A to B, dir[1]: B to A */
  uint32_t slot;            /* in relay_table: the handle JS holds is this slot and its generation */
  int closing;              /* poll handles whose close callback is pending */
  bool finished;            /* fds closed, polls closing */
  int err;                  /* errno of the first failure, 0 for none */
  const char *err_syscall;
  /* relayConnect only. While `connecting`, fd[1] is the backend socket being connected and fd[0] (the
   * client) is not touched: a failed connect or a cancel gives it back to the caller unread. */
  bool connecting;
  bool connect_failed;      /* the final callback reports a failed connect (kind 2), not an end (kind 1) */
  bool silent;              /* cancelled: release the callback without calling it */
  bool timer_init;
  uv_timer_t timer;         /* the connect deadline, or the deferred report of an immediate failure */
  int deferred_err;         /* socket()/connect() failed at once: reported from the timer, never synchronously */
  const char *deferred_syscall;
  bool uring;               /* the data path runs on the thread's io_uring, not on uv_polls */
  int inflight;             /* io_uring operations whose completion has not been taken yet */
  int holds;                /* being worked on (ring_complete, relay_maybe_release): not freed meanwhile */
  bool abortive;            /* relay_finish: close with a reset */
  uv_loop_t *loop;
  uint64_t active_at;       /* uv_now() when the relay started or last moved bytes (relayInfo idleMs) */
};


/* The relay moved bytes (or saw an EOF or an error) just now: what relayInfo's idleMs counts from. */
static inline void relay_touch(relay_t *r) {
  r->active_at = uv_now(r->loop);
}

/* The bytes a direction holds that its destination has not taken yet. */
static inline size_t relay_pending(const relay_dir_t *d) {
  if (d->splicing) return d->in_pipe;
  return (d->ubid >= 0 ? d->ulen - d->uoff : 0) + (d->tail - d->head);
}

/* What a relay callback reports: its second argument. */
#define RELAY_CONNECTED 0      /* relayConnect: the backend accepted; the relay owns the client fd now */
#define RELAY_DONE 1           /* both fds are closed; the first argument is null or the first error */
#define RELAY_CONNECT_FAILED 2 /* relayConnect: the connect failed; the client fd is the caller's again */

/* relay.c: handles (a slot and its generation, as a positive int32) */
int32_t relay_register(relay_t *r);
void relay_unregister(relay_t *r);
/* The relay behind the handle argument: 0 with *r set (NULL for a finished relay), or a negative errno
 * with a JS exception thrown. */
int arg_relay(napi_env env, napi_value v, relay_t **r);

/* relay.c: life cycle */
/* Seed a direction with bytes read before the relay took over; they go out before anything else.
 * 0 or -ENOMEM. */
int relay_dir_init(relay_dir_t *d, int from, int to, const void *initial, size_t len, bool ended,
                   int splice_after);
/* Call the callback with (err, kind), unless the environment is gone or the relay was cancelled. */
void relay_call(relay_t *r, int kind);
/* Close everything; `err` (a positive errno, 0 for none) from `syscall` is what onDone reports. */
void relay_finish(relay_t *r, int err, const char *syscall, bool abortive);
/* Free a finished relay once nothing refers to it any more (relay_release_now): called after every
 * completion and close callback, so the common "not yet" stays inline. */
void relay_release_now(relay_t *r);
static inline void relay_maybe_release(relay_t *r) {
  if (!r->finished || r->closing > 0 || r->inflight > 0 || r->holds > 0) return;
  relay_release_now(r);
}
/* Environment teardown (the handle_t hook): finish without calling into JS. */
void relay_on_env_gone(handle_t *h);
/* The ring is gone (environment teardown): relays waiting for a completion close their fds now. */
void relay_ring_gone(void);

/* relay-poll.c: the copy/splice path of a direction, shared by both engines, and the poll engine */
void relay_dir_free(relay_dir_t *d);
/* Pass a direction's EOF on (shutdown(SHUT_WR) on its destination). 0 or a negative errno. */
int relay_pass_eof(relay_t *r, relay_dir_t *d);
void relay_start_splice(relay_dir_t *d);
/* Move what can be moved in one direction. 0, or a negative errno with *syscall set. */
int relay_shovel(relay_t *r, relay_dir_t *d, const char **syscall);
/* Both directions, for relay_step. */
#define RELAY_BOTH 3
/* One step of the poll engine: shovel the directions in `mask` (bit k: dir[k]), then finish or re-arm. */
void relay_step(relay_t *r, int mask);

/* relay-uring.c: the io_uring engine (stubs when built without it) */
typedef struct relay_ring relay_ring_t;
/* The thread's ring, set up on first use; NULL when relays poll instead (see relayEngine). */
relay_ring_t *ring_get(napi_env env, uv_loop_t *loop);
bool ring_is_open(void);
/* A relay will run on the ring / was released: the loop stays alive while any is live. */
void ring_take(relay_t *r);
void ring_relay_released(void);
/* Start a relay's data path on the ring: both directions take their first step. */
void ring_start(relay_t *r);
/* relay_finish for a relay on the ring: cancel what is in flight. */
void ring_finish(relay_t *r);
/* A relay is being freed: give back a provided buffer it still holds. */
void ring_forget(relay_t *r);

#endif
