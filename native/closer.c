/*
 * Closing fds another process handed us, without blocking the event loop.
 *
 * close(2) of the last reference to a file can block for as long as that file's owner decides: a TCP
 * socket with SO_LINGER set and unsent data waits up to the linger time (socket(7), SO_LINGER), a file on
 * a FUSE mount waits for its daemon's FLUSH reply. The container can pass such fds with any notify
 * datagram (SCM_RIGHTS, unix(7)), and closing a unix socket whose receive queue holds passed fds releases
 * those too. So these closes run on one helper thread, as systemd's asynchronous_close() does
 * (src/basic/async.c: a thread with every signal blocked), but bounded: at most CLOSER_QUEUE_MAX fds are
 * queued or being closed at once. A receiver reserves room for the most one message can carry before it
 * reads one (closer_reserve), and when there is none it stops reading until the thread has made room:
 * a peer that passes fds whose close never ends only stops its own messages, never podsock's loop, and
 * never makes podsock hold more than CLOSER_QUEUE_MAX fds.
 *
 * The thread exists only while there is something to close: it is started by the first fd queued and
 * ends when the queue is empty (a service that is never passed an fd never has it).
 *
 * What this cannot cover: when recvmsg(2) finds no room for a passed fd (the control buffer is too small,
 * or the fd table is full: EMFILE), the kernel releases the fds it could not install itself, on the
 * receiving thread (net/core/scm.c, scm_detach_fds() and __scm_destroy(); the final fput() runs as task
 * work on return to user space). The receiver's control buffer holds SCM_MAX_FD fds, so only a full fd
 * table leaves this path open; Node raises the soft RLIMIT_NOFILE to the hard limit at start-up.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <unistd.h>

#include "closer.h"

/* The closer thread only calls close(): a small stack is plenty. */
#define CLOSER_STACK_BYTES (64 * 1024)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int queue[CLOSER_QUEUE_MAX];
static unsigned head;      /* index of the oldest queued fd */
static unsigned queued;    /* fds in queue[] */
static unsigned closing;   /* fds taken from the queue whose close() has not returned yet (0 or 1) */
static unsigned reserved;  /* slots promised by closer_reserve */
static bool running;       /* the thread exists */
static uint64_t closed_total;
static closer_waiter_t *waiters;

static unsigned used_locked(void) {
  return queued + closing + reserved;
}

/* Slots a peer's receive may still reserve. */
static unsigned peer_room_locked(void) {
  unsigned used = used_locked(), limit = CLOSER_QUEUE_MAX - CLOSER_OWN_RESERVE;
  return used >= limit ? 0 : limit - used;
}

static void wake_waiters_locked(void) {
  closer_waiter_t **p = &waiters;
  while (*p != NULL) {
    closer_waiter_t *w = *p;
    if (peer_room_locked() >= w->need) {
      *p = w->next;
      w->next = NULL;
      w->queued = false;
      w->wake(w);
    } else {
      p = &w->next;
    }
  }
}

static void *closer_main(void *arg) {
  pthread_mutex_lock(&lock);
  while (queued > 0) {
    int fd = queue[head];
    head = (head + 1) % CLOSER_QUEUE_MAX;
    queued--;
    closing++;
    pthread_mutex_unlock(&lock);
    /* EINTR still released the fd (close(2), "Dealing with error returns"); nothing to retry. */
    close(fd);
    pthread_mutex_lock(&lock);
    closing--;
    closed_total++;
    wake_waiters_locked();
  }
  running = false;
  pthread_mutex_unlock(&lock);
  return NULL;
}

/* Start the thread if it is not running. Every signal is blocked in it, so that signals keep going to
 * Node's threads (as asynchronous_job() in systemd's src/basic/async.c does). */
static int start_locked(void) {
  pthread_attr_t attr;
  pthread_t thread;
  sigset_t all, saved;
  size_t stack = CLOSER_STACK_BYTES < PTHREAD_STACK_MIN ? PTHREAD_STACK_MIN : CLOSER_STACK_BYTES;
  int r;

  if (running) return 0;
  r = pthread_attr_init(&attr);
  if (r != 0) return -r;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, stack);
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  r = pthread_create(&thread, &attr, closer_main, NULL);
  pthread_sigmask(SIG_SETMASK, &saved, NULL);
  pthread_attr_destroy(&attr);
  if (r != 0) return -r;
  running = true;
  return 0;
}

static void push_locked(int fd) {
  queue[(head + queued) % CLOSER_QUEUE_MAX] = fd;
  queued++;
}

int closer_reserve(unsigned n, closer_waiter_t *w) {
  int r = 0;
  pthread_mutex_lock(&lock);
  if (peer_room_locked() >= n) {
    reserved += n;
  } else {
    r = -EAGAIN;
    if (w != NULL && !w->queued) {
      w->need = n;
      w->next = waiters;
      w->queued = true;
      waiters = w;
    }
  }
  pthread_mutex_unlock(&lock);
  return r;
}

void closer_commit(const int *fds, unsigned count, unsigned reserve) {
  pthread_mutex_lock(&lock);
  reserved -= reserve < reserved ? reserve : reserved;
  for (unsigned i = 0; i < count; i++) push_locked(fds[i]);
  /* If the thread cannot start now (EAGAIN from clone: a thread limit), the fds stay queued, counted
   * against the bound, and the next fd queued tries again. */
  if (queued > 0) start_locked();
  wake_waiters_locked();
  pthread_mutex_unlock(&lock);
}

void closer_close(int fd) {
  bool queued_it = false;
  if (fd < 0) return;
  pthread_mutex_lock(&lock);
  if (used_locked() < CLOSER_QUEUE_MAX && start_locked() == 0) {
    push_locked(fd);
    queued_it = true;
  }
  pthread_mutex_unlock(&lock);
  if (!queued_it) close(fd);
}

void closer_cancel(closer_waiter_t *w) {
  pthread_mutex_lock(&lock);
  if (w->queued) {
    for (closer_waiter_t **p = &waiters; *p != NULL; p = &(*p)->next) {
      if (*p == w) {
        *p = w->next;
        break;
      }
    }
    w->next = NULL;
    w->queued = false;
  }
  pthread_mutex_unlock(&lock);
}

/* closerInfo() -> { queued, closing, reserved, capacity, peerCapacity, closed, running }: the queue's
 * state, for tests and diagnostics. */
static napi_value js_closer_info(napi_env env, napi_callback_info info) {
  napi_value obj, v;
  unsigned q, c, r;
  uint64_t total;
  bool run;
  pthread_mutex_lock(&lock);
  q = queued;
  c = closing;
  r = reserved;
  total = closed_total;
  run = running;
  pthread_mutex_unlock(&lock);
  if (napi_create_object(env, &obj) != napi_ok) return NULL;
  const struct {
    const char *name;
    double value;
  } fields[] = {
      {"queued", q}, {"closing", c}, {"reserved", r}, {"capacity", CLOSER_QUEUE_MAX},
      {"peerCapacity", CLOSER_QUEUE_MAX - CLOSER_OWN_RESERVE}, {"closed", (double)total},
  };
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    if (napi_create_double(env, fields[i].value, &v) != napi_ok || napi_set_named_property(env, obj, fields[i].name, v) != napi_ok) return NULL;
  }
  if (napi_get_boolean(env, run, &v) != napi_ok || napi_set_named_property(env, obj, "running", v) != napi_ok) return NULL;
  return obj;
}

napi_status podsock_closer_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"closerInfo", NULL, js_closer_info, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
