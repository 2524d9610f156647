/*
 * The relay's poll engine (relay.h): recv/send, or splice(2) through a pipe, driven by one uv_poll per fd
 * on Node's loop. Its copy/splice path (relay_shovel) also moves the bytes of a splicing direction on the
 * io_uring engine (relay-uring.c), which then only polls through the ring.
 */
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * The copy path reads into one buffer shared by every relay of the thread (Node's loop thread; a worker
 * has its own): a request or reply that the other side takes at once never needs memory of its own, so a
 * connection costs no 2 x 64 KiB of fresh pages (page faults, zeroing) and a thousand idle keep-alive
 * connections hold no buffers. Bytes the other side did not take are moved into a buffer of the direction.
 */
static _Thread_local char relay_scratch[RELAY_BUFFER_BYTES];

/* If a direction's pending bytes sit in the scratch buffer, give them a buffer of its own. 0 or -ENOMEM. */
static int relay_keep_pending(relay_dir_t *d) {
  if (d->buf != relay_scratch) return 0;
  size_t pending = d->tail - d->head;
  if (pending == 0) {
    d->buf = NULL;
    d->cap = d->head = d->tail = 0;
    return 0;
  }
  char *own = malloc(RELAY_BUFFER_BYTES);
  if (own == NULL) {
    d->buf = NULL;
    d->cap = d->head = d->tail = 0;
    return -ENOMEM;
  }
  memcpy(own, relay_scratch + d->head, pending);
  d->buf = own;
  d->cap = RELAY_BUFFER_BYTES;
  d->head = 0;
  d->tail = pending;
  return 0;
}

void relay_dir_free(relay_dir_t *d) {
  if (d->buf == relay_scratch) d->buf = NULL;
  free(d->buf);
  d->buf = NULL;
  d->head = d->tail = d->cap = 0;
  for (int i = 0; i < 2; i++) {
    if (d->pipe[i] >= 0) close(d->pipe[i]);
    d->pipe[i] = -1;
  }
}

/*
 * Pass a direction's EOF on once everything before it was written: shutdown(SHUT_WR) on its destination,
 * then it is done (its buffers go). When the other direction has already ended, both sockets were read to
 * their EOF and are closed next: close() sends the FIN then (nothing is unread, so it is no reset), and the
 * shutdown() would be one syscall per connection for nothing. 0 or a negative errno.
 */
int relay_pass_eof(relay_t *r, relay_dir_t *d) {
  if (!r->dir[d == &r->dir[0] ? 1 : 0].shut && shutdown(r->fd[d->to], SHUT_WR) < 0) return -errno;
  d->shut = true;
  relay_dir_free(d);
  return 0;
}

/* Switch a drained direction to splice(2). Failing to get a pipe (EMFILE...) just keeps copying. */
void relay_start_splice(relay_dir_t *d) {
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
    d->splice_after = -1;
    return;
  }
  int size = fcntl(p[1], F_SETPIPE_SZ, RELAY_PIPE_BYTES);
  if (size < 0) size = fcntl(p[1], F_GETPIPE_SZ);
  if (size <= 0) {
    close(p[0]);
    close(p[1]);
    d->splice_after = -1;
    return;
  }
  d->pipe[0] = p[0];
  d->pipe[1] = p[1];
  d->pipe_cap = (size_t)size;
  d->in_pipe = 0;
  d->splicing = true;
  free(d->buf);
  d->buf = NULL;
  d->cap = d->head = d->tail = 0;
}

/* Whether a non-blocking recv/send/splice error only means "not now": EAGAIN or EWOULDBLOCK (the
 * level-triggered poll wakes the relay when there is more), EINTR (the next round tries again). Any
 * other errno ends the connection. */
static inline bool relay_retry_later(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

/*
 * Move what can be moved in one direction, at most RELAY_ROUNDS_MAX read/write rounds. Returns 0, or a
 * negative errno with *syscall set.
 */
int relay_shovel(relay_t *r, relay_dir_t *d, const char **syscall) {
  int from = r->fd[d->from], to = r->fd[d->to];
  /* A recv() that returned less than it asked for emptied the socket: another one now would only say
   * EAGAIN. The poll is level-triggered, so whatever arrives later wakes the relay again. This halves
   * the syscalls of small request/response traffic (recv, send; no third recv). Unless the peer's FIN
   * is known to be queued too (EPOLLRDHUP): then the next recv() finds the EOF in the same round
   * instead of one loop turn later (a reply followed by a close, HTTP without keep-alive). */
  bool drained = false;
  for (int round = 0; round < RELAY_ROUNDS_MAX; round++) {
    bool progress = false;
    ssize_t n;

    if (!d->splicing && d->splice_after >= 0 && d->full_reads >= d->splice_after && relay_pending(d) == 0 &&
        !d->eof)
      relay_start_splice(d);

    /* Fill. */
    if (!d->eof && !drained) {
      if (d->splicing) {
        if (d->in_pipe < d->pipe_cap) {
          n = splice(from, NULL, d->pipe[1], NULL, d->pipe_cap - d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
          if (n > 0) {
            d->in_pipe += (size_t)n;
            progress = true;
          } else if (n == 0) {
            d->eof = true;
            progress = true;
          } else if (!relay_retry_later(errno)) {
            *syscall = "splice";
            return -errno;
          }
        }
      } else {
        if (d->head == d->tail) d->head = d->tail = 0;
        if (d->buf == NULL) {
          /* Nothing pending: read into the shared scratch buffer; only what the other side does not take
           * at once is copied into a buffer of this connection's own (below, after the flush). */
          d->buf = relay_scratch;
          d->cap = RELAY_BUFFER_BYTES;
        }
        if (d->tail < d->cap) {
          size_t room = d->cap - d->tail;
          n = recv(from, d->buf + d->tail, room, MSG_DONTWAIT);
          if (n > 0) {
            d->tail += (size_t)n;
            d->full_reads = (size_t)n == room && room == d->cap ? d->full_reads + 1 : 0;
            drained = (size_t)n < room && !r->rdhup[d->from];
            progress = true;
          } else if (n == 0) {
            d->eof = true;
            progress = true;
          } else if (!relay_retry_later(errno)) {
            *syscall = "recv";
            return -errno;
          }
        }
      }
    }

    /* Flush. */
    if (relay_pending(d) > 0) {
      if (d->splicing) {
        n = splice(d->pipe[0], NULL, to, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          d->in_pipe -= (size_t)n;
          progress = true;
        } else if (n < 0 && !relay_retry_later(errno)) {
          *syscall = "splice";
          return -errno;
        }
      } else {
        n = send(to, d->buf + d->head, d->tail - d->head, MSG_DONTWAIT | MSG_NOSIGNAL);
        int send_errno = errno;
        if (n > 0) {
          d->head += (size_t)n;
          if (d->head == d->tail) d->head = d->tail = 0;
          progress = true;
        }
        if (relay_keep_pending(d) != 0) {
          *syscall = "malloc";
          return -ENOMEM;
        }
        if (n < 0 && !relay_retry_later(send_errno)) {
          *syscall = "send";
          return -send_errno;
        }
      }
    }
    if (d->buf == relay_scratch && relay_keep_pending(d) != 0) {
      *syscall = "malloc";
      return -ENOMEM;
    }

    int err;
    if (d->eof && !d->shut && relay_pending(d) == 0 && (err = relay_pass_eof(r, d)) != 0) {
      *syscall = "shutdown";
      return err;
    }
    if (!progress) break;
  }
  return 0;
}

static void relay_on_poll(uv_poll_t *handle, int status, int events);

/* Start, change or stop each fd's poll to match what the directions wait for. 0 or a negative errno (libuv's
 * UV_E* are negative errnos on Linux). */
static int relay_update_interest(relay_t *r) {
  for (int i = 0; i < 2; i++) {
    int want = 0;
    for (int k = 0; k < 2; k++) {
      const relay_dir_t *d = &r->dir[k];
      if (d->shut) continue;
      if (d->from == i && !d->eof && relay_pending(d) == 0) want |= UV_READABLE | UV_DISCONNECT;
      if (d->to == i && relay_pending(d) > 0) want |= UV_WRITABLE;
    }
    if (want == r->interest[i]) continue;
    int rc = want == 0 ? uv_poll_stop(&r->poll[i]) : uv_poll_start(&r->poll[i], want, relay_on_poll);
    if (rc < 0) return rc;
    r->interest[i] = want;
  }
  return 0;
}

/* One step of the state machine: shovel the directions in `mask` (bit k: dir[k]), then finish or re-arm.
 * Only a direction whose source became readable or whose destination became writable can move. */
void relay_step(relay_t *r, int mask) {
  const char *syscall = NULL;
  int err = 0;
  for (int k = 0; k < 2 && err == 0; k++) {
    if ((mask & (1 << k)) && !r->dir[k].shut) err = relay_shovel(r, &r->dir[k], &syscall);
  }
  if (err != 0) {
    relay_finish(r, -err, syscall, true);
    return;
  }
  if (r->dir[0].shut && r->dir[1].shut) {
    /* Both directions saw EOF and passed it on: nothing is unread, a plain close is a clean one. */
    relay_finish(r, 0, NULL, false);
    return;
  }
  int rc = relay_update_interest(r);
  if (rc < 0) relay_finish(r, -rc, "uv_poll_start", true);
}

static void relay_on_poll(uv_poll_t *handle, int status, int events) {
  relay_t *r = handle->data;
  int i = handle == &r->poll[0] ? 0 : 1;
  if (r->finished) return;
  relay_touch(r);
  if (status < 0) {
    /* libuv reports EPOLLERR (a pending socket error such as a received RST) as UV_EBADF and stops the
     * watcher (src/unix/poll.c uv__poll_io). The socket is fine as an fd: let the next recv/send/splice
     * report the real errno, and fall back to SO_ERROR if none of them touched the socket. */
    r->interest[i] = 0;
    relay_step(r, RELAY_BOTH);
    if (!r->finished) {
      int soerr = 0;
      socklen_t len = sizeof soerr;
      if (getsockopt(r->fd[i], SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
      if (soerr != 0) relay_finish(r, soerr, "getsockopt(SO_ERROR)", true);
    }
    return;
  }
  /* dir[i] reads from fd[i]; dir[1 - i] writes to it. A hang-up is readable (read() returns 0 or the error). */
  int mask = 0;
  if (events & UV_DISCONNECT) r->rdhup[i] = true;
  if (events & (UV_READABLE | UV_DISCONNECT)) mask |= 1 << i;
  if (events & UV_WRITABLE) mask |= 1 << (1 - i);
  relay_step(r, mask == 0 ? RELAY_BOTH : mask);
}
