/*
 * The relay's io_uring engine (relay.h), on the minimal ring of uring.c; and the JS entry points that
 * choose the engine and trim the ring's buffers, relayEngine and relayTrim.
 */
#include "relay.h"
#include "internal.h"
#include "uring.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * On Linux 6.1 and later the relay moves bytes through one io_uring(7) per thread (native/uring.c)
 * instead of recv/send calls driven by uv_polls. Per direction exactly one operation is in flight:
 * a receive into a provided buffer, then a send of what it received, then the next receive. The send is
 * one attempt (MSG_DONTWAIT); what it could not send moves into a buffer of the direction's own, which is
 * sent with MSG_WAITALL (the kernel retries a partial send itself), and the provided buffer goes back to
 * the pool at once: a peer that does not read pins nothing the other connections need. That keeps the
 * poll engine's contract unchanged:
 * - backpressure: nothing more is read from a side while what was read from it waits to be sent, so TCP
 *   flow control pushes back on the sender;
 * - bounded memory: receives take a buffer from one pool of URING_BUFS x URING_BUF_BYTES only when data
 *   arrives (an idle connection holds none) and only until the send that follows it returns, plus at most
 *   URING_BUF_BYTES of a direction's own while its receiver does not take it; when the pool is empty
 *   (a burst of receives) a receive fails with ENOBUFS and the direction waits, oldest first, for the
 *   next buffer given back;
 * - half-close: a receive of 0 bytes becomes shutdown(SHUT_WR) on the other side once everything before
 *   it was sent; an error resets both sides (relay_finish).
 * A direction carrying bulk data (spliceAfter receives in a row that filled a whole buffer) switches to
 * splice(2) through a pipe as in the poll engine (relay_shovel), with the ring only telling it when its
 * source is readable or its destination writable (IORING_OP_POLL_ADD): io_uring's own splice runs in
 * worker threads, and zero-copy matters more there than system calls.
 * What it saves is the system calls: the poll engine spends an epoll wake-up plus a recv and a send per
 * chunk per direction, this one a single io_uring_enter for everything that completed meanwhile, which on
 * small request/response traffic is most of the proxy's CPU time.
 *
 * The ring is IORING_SETUP_DEFER_TASKRUN: completion work runs only inside io_uring_enter on this thread,
 * and the eventfd registered with the ring, watched by a uv_poll on Node's loop, says when to call it.
 * When the ring cannot be set up (ENOSYS, EPERM from kernel.io_uring_disabled or a seccomp filter,
 * EINVAL before 6.1) or relayEngine('poll') was called, relays use the poll engine (relay-poll.c).
 */

/* Overridable at build time only so that a stress build (test/unit/sd/relay-asan.test.ts) can make the
 * queues and the pool tiny and so take the paths of a full queue and an empty pool all the time. */
#ifndef URING_SQ_ENTRIES
#define URING_SQ_ENTRIES 1024
#endif
#ifndef URING_CQ_ENTRIES
#define URING_CQ_ENTRIES 16384
#endif
#ifndef URING_BUFS
#define URING_BUFS 256
#endif
#define URING_BUF_BYTES (32 * 1024)
/* enter/complete rounds per wake-up before yielding to the loop (timers, accepts, other I/O) */
#define URING_ROUNDS_MAX 16

/* What a completion's user_data names: the direction (8-byte aligned) with the operation in the low bits. */
enum { UOP_NONE = 0, UOP_RECV = 1, UOP_SEND = 2, UOP_NOP = 3, UOP_POLL = 4 };
#define UOP_MASK 7u

struct relay_ring {
  bool tried;        /* set-up attempted: it is attempted once per thread */
  bool open;
  bool forced_poll;  /* relayEngine('poll'): new relays poll */
  uring_t u;
  int efd;
  uv_poll_t poll;
  bool in_run;       /* inside ring_run: submissions go with its next io_uring_enter */
  uint32_t live;     /* relays on the ring not yet released: the poll keeps the loop alive while > 0 */
  int err;           /* why set-up failed */
  const char *what;
  relay_dir_t *wait_head, *wait_tail; /* waiting for a buffer (ENOBUFS), oldest first */
  uint32_t waiting;  /* how many */
  uint32_t lent;     /* provided buffers taken by a receive and not given back yet */
};

static _Thread_local relay_ring_t relay_ring;

bool ring_is_open(void) {
  return relay_ring.open;
}

#if PODSOCK_HAVE_URING

static void ring_on_readable(uv_poll_t *handle, int status, int events);

static void ring_on_env_cleanup(void *arg) {
  relay_ring_t *g = arg;
  /* Relays' own hooks ran before this one (registered later, run earlier): they cancelled what was in
   * flight. Closing the ring cancels anything left; relays still waiting for a completion are not freed
   * (the environment is going away). */
  uv_close((uv_handle_t *)&g->poll, NULL);
  uring_close(&g->u);
  close(g->efd);
  g->efd = -1;
  g->open = false;
  g->err = ESHUTDOWN;
  g->what = "environment teardown";
  relay_ring_gone();
}

relay_ring_t *ring_get(napi_env env, uv_loop_t *loop) {
  relay_ring_t *g = &relay_ring;
  if (g->forced_poll) return NULL;
  if (g->open) return g;
  if (g->tried) return NULL;
  g->tried = true;
  g->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (g->efd < 0) {
    g->err = errno;
    g->what = "eventfd";
    return NULL;
  }
  int rc = uring_open(&g->u, URING_SQ_ENTRIES, URING_CQ_ENTRIES, URING_BUFS, URING_BUF_BYTES, g->efd, &g->what);
  if (rc == 0) {
    rc = uv_poll_init(loop, &g->poll, g->efd);
    if (rc < 0) g->what = "uv_poll_init";
  }
  if (rc < 0) {
    g->err = -rc;
    uring_close(&g->u);
    close(g->efd);
    g->efd = -1;
    return NULL;
  }
  g->poll.data = g;
  uv_poll_start(&g->poll, UV_READABLE, ring_on_readable); /* cannot fail on an initialised eventfd poll */
  uv_unref((uv_handle_t *)&g->poll);
  napi_add_env_cleanup_hook(env, ring_on_env_cleanup, g);
  g->open = true;
  return g;
}

void ring_take(relay_t *r) {
  r->uring = true;
  r->dir[0].owner = r->dir[1].owner = r;
  if (relay_ring.live++ == 0) uv_ref((uv_handle_t *)&relay_ring.poll);
}

void ring_relay_released(void) {
  if (--relay_ring.live == 0 && relay_ring.open) uv_unref((uv_handle_t *)&relay_ring.poll);
}

/* Submit what is queued, unless ring_run is on it. Completions posted at once (a cancel, a send that
 * went out inline) wake the loop through the eventfd; the write makes sure of it, and also brings
 * ring_run back for submissions the kernel could not take now (EAGAIN, EBUSY). */
static void ring_flush(relay_ring_t *g) {
  if (g->in_run || !g->open) return;
  uring_submit(&g->u, false);
  if (uring_pending(&g->u) || uring_work_pending(&g->u) || g->u.to_submit > 0) {
    uint64_t one = 1;
    (void)!write(g->efd, &one, sizeof one);
  }
}

static uint64_t ring_user_data(relay_dir_t *d, int op) {
  return (uint64_t)(uintptr_t)d | (uint64_t)op;
}

/* A submission slot for operation `op` of direction d on fd[i], counted in flight (UOP_NOP: for the
 * relay as a whole, not the direction's one operation); NULL when the queue is full. */
static struct io_uring_sqe *ring_queue(relay_ring_t *g, relay_dir_t *d, int op, int opcode, int i) {
  struct io_uring_sqe *sqe = uring_sqe(&g->u);
  if (sqe == NULL) return NULL;
  sqe->opcode = (uint8_t)opcode;
  sqe->fd = i < 0 ? -1 : d->owner->fd[i];
  sqe->user_data = ring_user_data(d, op);
  if (op != UOP_NOP) d->uop = op;
  d->owner->inflight++;
  return sqe;
}

/* Queue a receive into a provided buffer. POLL_FIRST: the data usually is not there yet (the other side
 * is still answering), so the kernel waits for readability before trying. 0 or -EBUSY. */
static int ring_recv(relay_ring_t *g, relay_dir_t *d) {
  struct io_uring_sqe *sqe = ring_queue(g, d, UOP_RECV, IORING_OP_RECV, d->from);
  if (sqe == NULL) return -EBUSY;
  sqe->flags = IOSQE_BUFFER_SELECT;
  sqe->buf_group = 0;
  sqe->len = URING_BUF_BYTES;
  sqe->ioprio = IORING_RECVSEND_POLL_FIRST;
  return 0;
}

/* Queue a one-shot poll of a splicing direction: its destination when the pipe holds bytes, else its source. */
static int ring_poll(relay_ring_t *g, relay_dir_t *d) {
  bool out = relay_pending(d) > 0;
  struct io_uring_sqe *sqe = ring_queue(g, d, UOP_POLL, IORING_OP_POLL_ADD, out ? d->to : d->from);
  if (sqe == NULL) return -EBUSY;
  sqe->poll32_events = out ? POLLOUT : POLLIN | POLLRDHUP;
  return 0;
}

/* Queue a send. From a provided buffer it is one attempt (MSG_DONTWAIT: io_uring then completes it with
 * what went out, or -EAGAIN, instead of waiting for room, io_uring/net.c io_sendmsg_prep REQ_F_NOWAIT),
 * so that the buffer goes back to the pool at once; from the direction's own buffer the kernel retries a
 * partial send itself (MSG_WAITALL). */
static int ring_send(relay_ring_t *g, relay_dir_t *d, const char *data, size_t len, bool pooled) {
  struct io_uring_sqe *sqe = ring_queue(g, d, UOP_SEND, IORING_OP_SEND, d->to);
  if (sqe == NULL) return -EBUSY;
  sqe->addr = (uint64_t)(uintptr_t)data;
  sqe->len = (uint32_t)len;
  sqe->msg_flags = MSG_NOSIGNAL | (pooled ? MSG_DONTWAIT : MSG_WAITALL);
  return 0;
}

/* A receive found the pool empty (ENOBUFS): d waits, last in line, for a buffer given back. */
static void ring_wait(relay_ring_t *g, relay_dir_t *d) {
  d->uwaiting = true;
  d->uprev = g->wait_tail;
  d->unext = NULL;
  if (g->wait_tail != NULL) g->wait_tail->unext = d;
  else g->wait_head = d;
  g->wait_tail = d;
  g->waiting++;
}

static void ring_unwait(relay_ring_t *g, relay_dir_t *d) {
  if (!d->uwaiting) return;
  if (d->uprev != NULL) d->uprev->unext = d->unext;
  else g->wait_head = d->unext;
  if (d->unext != NULL) d->unext->uprev = d->uprev;
  else g->wait_tail = d->uprev;
  d->uprev = d->unext = NULL;
  d->uwaiting = false;
  g->waiting--;
}

/* Put d first in line again: its receive could not be queued. */
static void ring_wait_first(relay_ring_t *g, relay_dir_t *d) {
  d->uwaiting = true;
  d->uprev = NULL;
  d->unext = g->wait_head;
  if (g->wait_head != NULL) g->wait_head->uprev = d;
  else g->wait_tail = d;
  g->wait_head = d;
  g->waiting++;
}

/* The oldest direction waiting for a buffer receives again. When its receive cannot be queued (the
 * submission queue is full and the kernel took nothing: EBUSY, EAGAIN) it stays first in line, for
 * ring_run's next pass (ring_flush signals the eventfd while submissions are left): a full queue is a
 * moment's congestion, not the connection's fault. Whether one was woken. */
static bool ring_wake_one(relay_ring_t *g) {
  relay_dir_t *d = g->wait_head;
  if (d == NULL) return false;
  ring_unwait(g, d);
  if (ring_recv(g, d) == 0) return true;
  ring_wait_first(g, d);
  return false;
}

/* Give a buffer back to the pool; the oldest direction waiting for one gets to receive again. */
static void ring_give_back(relay_ring_t *g, int bid) {
  uring_buf_return(&g->u, (unsigned)bid);
  g->lent--;
  ring_wake_one(g);
}

/*
 * Directions waiting for a buffer while the pool has some: each gets one. ring_give_back wakes one waiter
 * per buffer, but that is not always enough: a receive that failed with ENOBUFS may complete after the
 * buffers it lacked went back (ring_give_back found nobody waiting then), a woken receive whose relay
 * is aborted before data comes never takes the buffer it was woken for, and a wake-up may have found the
 * submission queue full. Run on every pass of ring_run, after its completions were taken, when `lent`
 * counts every buffer the kernel handed out, so nobody waits on a pool with room.
 */
static void ring_wake(relay_ring_t *g) {
  uint32_t room = g->u.nbufs > g->lent ? g->u.nbufs - g->lent : 0;
  while (room-- > 0 && ring_wake_one(g)) {
  }
}

/* The direction is done with the provided buffer it held (sent, or the send failed): back to the pool. */
static void ring_drop_buf(relay_ring_t *g, relay_dir_t *d) {
  int bid = d->ubid;
  d->ubid = -1;
  d->uoff = d->ulen = 0;
  ring_give_back(g, bid);
}

/* A relay is being freed: a provided buffer it still holds (a send that could not even be queued) goes
 * back to the pool, or the pool would be one buffer short for good. */
void ring_forget(relay_t *r) {
  if (!relay_ring.open) return;
  for (int k = 0; k < 2; k++) {
    if (r->dir[k].ubid >= 0) ring_drop_buf(&relay_ring, &r->dir[k]);
  }
  /* Outside ring_run (a relay freed from a close callback): submit the receive a buffer given back here
   * may have queued for a waiting direction, or nothing would. */
  ring_flush(&relay_ring);
}

/*
 * A send from a provided buffer did not take everything (the receiver is slow or does not read): move the
 * rest into a buffer of the direction's own and give the provided one back, so that a connection whose
 * peer does not read holds at most URING_BUF_BYTES of its own and nothing of the pool every connection
 * shares. 0 or -ENOMEM.
 */
static int ring_keep_rest(relay_ring_t *g, relay_dir_t *d) {
  size_t rest = d->ulen - d->uoff;
  if (d->buf == NULL) {
    d->buf = malloc(URING_BUF_BYTES);
    if (d->buf == NULL) return -ENOMEM;
    d->cap = URING_BUF_BYTES;
  }
  memcpy(d->buf, uring_buf(&g->u, (unsigned)d->ubid) + d->uoff, rest);
  d->head = 0;
  d->tail = rest;
  ring_drop_buf(g, d);
  return 0;
}

/*
 * The next step of a direction with nothing in flight: send what is pending (bytes read before the relay
 * took over, or the rest of a partial send), pass EOF on, or receive. Errors finish the relay.
 */
static void ring_advance(relay_ring_t *g, relay_t *r, relay_dir_t *d) {
  int err = 0;
  if (r->finished || d->shut) return;
  if (!d->splicing && d->splice_after >= 0 && d->full_reads >= d->splice_after && relay_pending(d) == 0 && !d->eof)
    relay_start_splice(d); /* no pipe (EMFILE...): it keeps copying */
  if (d->splicing) {
    const char *syscall = NULL;
    err = relay_shovel(r, d, &syscall);
    if (err != 0) {
      relay_finish(r, -err, syscall, true);
      return;
    }
    if (d->shut) {
      if (r->dir[0].shut && r->dir[1].shut) relay_finish(r, 0, NULL, false);
      return;
    }
    err = ring_poll(g, d);
  } else if (d->ubid >= 0 && d->uoff < d->ulen) {
    err = ring_send(g, d, uring_buf(&g->u, (unsigned)d->ubid) + d->uoff, d->ulen - d->uoff, true);
  } else if (d->tail > d->head) {
    err = ring_send(g, d, d->buf + d->head, d->tail - d->head, false);
  } else if (d->eof) {
    if ((err = relay_pass_eof(r, d)) != 0) relay_finish(r, -err, "shutdown", true);
    else if (r->dir[0].shut && r->dir[1].shut) relay_finish(r, 0, NULL, false);
    return;
  } else {
    err = ring_recv(g, d);
  }
  if (err != 0) relay_finish(r, -err, "io_uring_enter", true);
}

/* One completion of r's. Operations of a finished relay only give their buffer back and count down. */
static void ring_complete_op(relay_ring_t *g, relay_t *r, relay_dir_t *d, int op, const struct io_uring_cqe *c) {
  int res = c->res;
  r->inflight--;
  if (op == UOP_NOP) return;
  if (!r->finished && res != -ENOBUFS) relay_touch(r);
  d->uop = UOP_NONE;
  if (op == UOP_POLL) {
    if (r->finished) return;
    int polled = res > 0 && (res & POLLOUT) ? d->to : d->from;
    if (res > 0 && (res & POLLRDHUP)) r->rdhup[d->from] = true;
    ring_advance(g, r, d);
    /* A pending socket error (a reset) that no splice touched: report it, as relay_on_poll does. */
    if (!r->finished && res > 0 && (res & POLLERR)) {
      int soerr = 0;
      socklen_t len = sizeof soerr;
      if (getsockopt(r->fd[polled], SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
      if (soerr != 0) relay_finish(r, soerr, "getsockopt(SO_ERROR)", true);
    }
    return;
  }
  if (op == UOP_RECV) {
    if (c->flags & IORING_CQE_F_BUFFER) {
      int bid = (int)(c->flags >> IORING_CQE_BUFFER_SHIFT);
      g->lent++;
      if (res > 0 && !r->finished) {
        d->ubid = bid;
        d->uoff = 0;
        d->ulen = (size_t)res;
        d->full_reads = res == URING_BUF_BYTES ? d->full_reads + 1 : 0;
      } else {
        ring_give_back(g, bid);
      }
    }
    if (r->finished) {
      return;
    } else if (res > 0) {
      ring_advance(g, r, d);
    } else if (res == 0) {
      d->eof = true;
      ring_advance(g, r, d);
    } else if (res == -ENOBUFS) {
      ring_wait(g, d);
    } else if (res == -EINTR || res == -EAGAIN) {
      ring_advance(g, r, d);
    } else {
      relay_finish(r, -res, "recv", true);
    }
    return;
  }
  /* UOP_SEND */
  if (!r->finished && (res >= 0 || (res == -EAGAIN && d->ubid >= 0))) {
    size_t n = res > 0 ? (size_t)res : 0;
    if (d->ubid >= 0) {
      d->uoff += n;
      if (d->uoff >= d->ulen) {
        ring_drop_buf(g, d);
      } else if (ring_keep_rest(g, d) != 0) {
        ring_drop_buf(g, d);
        relay_finish(r, ENOMEM, "malloc", true);
        return;
      }
    } else {
      d->head += n;
      if (d->head >= d->tail) relay_dir_free(d); /* the bytes read before the take-over are out */
    }
    ring_advance(g, r, d);
    return;
  }
  if (d->ubid >= 0) ring_drop_buf(g, d);
  if (r->finished) return;
  if (res == -EINTR || res == -EAGAIN) ring_advance(g, r, d);
  else relay_finish(r, -res, "send", true);
}

/* One completion. r is held while it is handled: giving a buffer back starts a waiting direction, maybe
 * of r itself, whose failure finishes it, and onDone of another relay can abort r; either would otherwise
 * free r under the code still using it. The last completion of a finished relay releases it here. */
static void ring_complete(relay_ring_t *g, const struct io_uring_cqe *c) {
  if (c->user_data == 0) return; /* a cancel's own completion */
  int op = (int)(c->user_data & UOP_MASK);
  relay_dir_t *d = (relay_dir_t *)(uintptr_t)(c->user_data & ~(uint64_t)UOP_MASK);
  relay_t *r = d->owner;
  r->holds++;
  ring_complete_op(g, r, d, op, c);
  r->holds--;
  relay_maybe_release(r);
}

/* Run deferred completion work and handle what completed, until nothing moves and no work is left
 * deferred (at most URING_ROUNDS_MAX rounds; the eventfd is signalled again if anything is left). */
static void ring_run(relay_ring_t *g) {
  struct io_uring_cqe c;
  g->in_run = true;
  for (int round = 0; round < URING_ROUNDS_MAX && g->open; round++) {
    uring_submit(&g->u, true);
    int n = 0;
    while (g->open && uring_next(&g->u, &c)) {
      ring_complete(g, &c);
      n++;
    }
    ring_wake(g);
    if (n == 0 && g->u.to_submit == 0 && !uring_work_pending(&g->u)) break;
  }
  g->in_run = false;
  ring_flush(g);
}

static void ring_on_readable(uv_poll_t *handle, int status, int events) {
  relay_ring_t *g = handle->data;
  uint64_t count;
  (void)!read(g->efd, &count, sizeof count);
  ring_run(g);
}

/* relay_finish for a relay on the ring: cancel what is in flight and queue a no-op whose completion makes
 * onDone (and the close of the fds) come from a later loop turn even when nothing was in flight. */
void ring_finish(relay_t *r) {
  relay_ring_t *g = &relay_ring;
  bool uncancelled = false;
  if (!g->open) return; /* environment teardown: the ring is gone, nothing completes any more */
  for (int k = 0; k < 2; k++) {
    relay_dir_t *d = &r->dir[k];
    ring_unwait(g, d);
    if (d->uop == UOP_NONE) continue;
    struct io_uring_sqe *sqe = uring_sqe(&g->u);
    if (sqe == NULL) {
      uncancelled = true;
      continue;
    }
    sqe->opcode = IORING_OP_ASYNC_CANCEL;
    sqe->addr = ring_user_data(d, d->uop);
    sqe->user_data = 0;
  }
  /* No slot for a cancel (the queue is full and the kernel took nothing, EAGAIN or EBUSY): end the
   * operations through their sockets instead. After shutdown(2) a receive finds EOF, a send EPIPE and a
   * poll POLLHUP, so the relay does not wait for a peer that may never do anything again. */
  for (int i = 0; i < 2 && uncancelled; i++) {
    if (r->fd[i] >= 0) shutdown(r->fd[i], SHUT_RDWR);
  }
  ring_queue(g, &r->dir[0], UOP_NOP, IORING_OP_NOP, -1);
  ring_flush(g);
}

void ring_start(relay_t *r) {
  relay_ring_t *g = &relay_ring;
  for (int k = 0; k < 2 && !r->finished; k++) ring_advance(g, r, &r->dir[k]);
  ring_flush(g);
}

#else /* built with kernel headers before Linux 6.1: relays always poll */

relay_ring_t *ring_get(napi_env env, uv_loop_t *loop) {
  relay_ring.err = ENOSYS;
  relay_ring.what = "io_uring (built without Linux 6.1 headers)";
  return NULL;
}
void ring_take(relay_t *r) {}
void ring_relay_released(void) {}
void ring_finish(relay_t *r) {}
void ring_forget(relay_t *r) {}
void ring_start(relay_t *r) {}

#endif

/*
 * relayEngine(mode?) -> { engine: 'io_uring' | 'poll', reason: Error | null, waiting, live, lent }
 *
 * Which engine relays started from now on use on this thread, setting up the ring if that was not tried
 * yet. mode 'poll' makes new relays poll (relays already running keep their engine), 'auto' undoes it;
 * no mode only asks. `reason` says why relays poll: the failed step with its errno, or the 'poll' mode.
 * `live`: relays on the ring not yet released; `waiting`: their directions waiting for a free buffer;
 * `lent`: provided buffers a receive filled that were not given back to the pool yet.
 */
static napi_value js_relay_engine(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, v, reason = NULL;
  napi_valuetype t = napi_undefined;
  char mode[16];
  size_t mode_len;
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc >= 1) NAPI_CALL(env, napi_typeof(env, argv[0], &t));
  if (t != napi_undefined) {
    if (arg_string(env, argv[0], "relayEngine", mode, sizeof mode, &mode_len) < 0) return NULL;
    if (strcmp(mode, "poll") == 0) relay_ring.forced_poll = true;
    else if (strcmp(mode, "auto") == 0) relay_ring.forced_poll = false;
    else {
      napi_throw_type_error(env, "EINVAL", "podsock_native: relayEngine mode must be 'auto' or 'poll'");
      return NULL;
    }
  }
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  relay_ring_t *g = ring_get(env, loop);
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_string_utf8(env, g != NULL ? "io_uring" : "poll", NAPI_AUTO_LENGTH, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "engine", v));
  if (g == NULL && relay_ring.forced_poll) {
    napi_value code, message;
    NAPI_CALL(env, napi_create_string_utf8(env, "EPERM", NAPI_AUTO_LENGTH, &code));
    NAPI_CALL(env, napi_create_string_utf8(env, "relayEngine('poll') was called", NAPI_AUTO_LENGTH, &message));
    NAPI_CALL(env, napi_create_error(env, code, message, &reason));
  } else if (g == NULL) {
    reason = errno_error(env, relay_ring.what != NULL ? relay_ring.what : "io_uring_setup", relay_ring.err != 0 ? relay_ring.err : ENOSYS);
  }
  if (reason == NULL) NAPI_CALL(env, napi_get_null(env, &reason));
  NAPI_CALL(env, napi_set_named_property(env, result, "reason", reason));
  NAPI_CALL(env, napi_create_uint32(env, relay_ring.waiting, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "waiting", v));
  NAPI_CALL(env, napi_create_uint32(env, relay_ring.live, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "live", v));
  NAPI_CALL(env, napi_create_uint32(env, relay_ring.lent, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "lent", v));
  return result;
}

/* relayTrim() -> number: with no relay live on this thread's ring, give the pages of its provided
 * buffers back (uring_bufs_release): a burst of load cycles through all of them (the kernel takes them
 * in ring order), and an idle service would keep them resident. Returns the bytes given back, 0 when
 * relays are live or there is no ring. */
static napi_value js_relay_trim(napi_env env, napi_callback_info info) {
  napi_value v;
  long n = 0;
  if (relay_ring.open && relay_ring.live == 0 && relay_ring.waiting == 0) n = uring_bufs_release(&relay_ring.u);
  if (n < 0) {
    throw_errno(env, "madvise(MADV_DONTNEED)", (int)-n);
    return NULL;
  }
  NAPI_CALL(env, napi_create_double(env, (double)n, &v));
  return v;
}


napi_status podsock_relay_uring_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"relayEngine", NULL, js_relay_engine, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayTrim", NULL, js_relay_trim, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
