/*
 * Unix datagram sockets: NOTIFY_SOCKET is SOCK_DGRAM, often an abstract '@name', and Node's dgram module
 * only knows udp4/udp6 (net.connect() to a datagram path fails with EPROTOTYPE). Received WITH the
 * sender's credentials (SO_PASSCRED / SCM_CREDENTIALS, unix(7)), which is how the notify relay knows
 * which process spoke; fds passed with SCM_RIGHTS are closed on the closer's thread (closer.c,
 * sd_notify_barrier(3)). Receiving watches the fd with a uv_poll_t on Node's own loop.
 */
#include "internal.h"
#include "closer.h"
#include "handle.h"
#include "notify-socket.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>
#include <uv.h>

/* systemd's NOTIFY_BUFFER_MAX (= PIPE_BUF, src/basic/constants.h). One byte more is read so that a larger
 * datagram is seen as too large even when the kernel does not report MSG_TRUNC for it. */
#define NOTIFY_MAX_BYTES 4096
/* Datagrams read per wake-up: a flood yields to the event loop after this many (timers, I/O keep running). */
#define RECV_BATCH_MAX 64
/* SCM_MAX_FD: the most fds one message can carry (unix(7)). */
#define SCM_FDS_MAX 253

/*
 * Lifetime: the struct is shared by the JS wrapper object (napi_wrap) and, once receiving started, by the
 * uv_poll_t, whose memory must stay valid until its uv_close() callback. Its handle_t (handle.h) counts
 * both as owners; the last one to let go frees it. While receiving, a strong reference to the wrapper
 * keeps it from being collected (like any active Node handle), so a finalizer only ever meets an idle
 * socket, except at environment teardown, where the cleanup hook has already stopped everything.
 */
typedef struct {
  handle_t h;               /* first: owners (wrapper, poll, resume), onBatch while receiving */
  int fd;                   /* -1 once closed */
  bool polling;             /* uv_poll_init done and uv_close not yet called */
  bool want_ref;            /* keep the loop alive while receiving */
  uv_poll_t poll;
  uv_async_t resume;        /* the closer made room again (closer.c): poll again */
  bool resume_init;         /* uv_async_init done and uv_close not yet called */
  bool paused;              /* polling stopped until the closer has room for passed fds */
  closer_waiter_t waiter;
} dgram_t;

_Static_assert(offsetof(dgram_t, h) == 0, "handle_t comes first");

/* The wake-up source keeps the loop alive only while it stands in for a paused, referenced poll. */
static void dgram_update_resume_ref(dgram_t *d) {
  if (!d->resume_init) return;
  if (d->paused && d->want_ref) uv_ref((uv_handle_t *)&d->resume);
  else uv_unref((uv_handle_t *)&d->resume);
}

static void dgram_close_fd(int fd);

/* Stop receiving and close the fd. Idempotent. `js` says whether Node-API references may be released
 * here (false from the GC finalizer and the teardown hook, where the environment may be half gone). */
static void dgram_shutdown(dgram_t *d, bool js) {
  if (d->polling) {
    uv_poll_stop(&d->poll);
    uv_close((uv_handle_t *)&d->poll, handle_on_uv_closed);
    d->polling = false;
  }
  if (d->resume_init) {
    closer_cancel(&d->waiter); /* after this the closer thread no longer touches d->resume */
    uv_close((uv_handle_t *)&d->resume, handle_on_uv_closed);
    d->resume_init = false;
  }
  d->paused = false;
  if (d->fd >= 0) {
    dgram_close_fd(d->fd);
    d->fd = -1;
  }
  if (js) handle_js_drop(&d->h);
  handle_unhook(&d->h);
}

/* Environment teardown (process exit, worker end): release the fd and the poll handle. */
static void dgram_on_env_gone(handle_t *h) {
  dgram_shutdown((dgram_t *)h, false);
}

static void dgram_finalize(napi_env env, void *data, void *hint) {
  dgram_t *d = data;
  dgram_shutdown(d, false);
  handle_unref(&d->h);
}

static dgram_t *unwrap_dgram(napi_env env, napi_value obj) {
  void *data = NULL;
  if (napi_unwrap(env, obj, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: not a datagram socket handle");
    return NULL;
  }
  return data;
}

/*
 * dgramOpen(bindAddress | null | fd) -> handle. socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC|SOCK_NONBLOCK); an fd
 * number adopts that socket instead (made close-on-exec and non-blocking), owned by the handle from then on.
 * With an address: SO_PASSCRED is set BEFORE bind so that no datagram can arrive without credentials
 * (unix(7): with SO_PASSCRED every received message carries SCM_CREDENTIALS; systemd ignores a notify
 * message lacking them), and SO_RCVBUF is bounded so a peer cannot queue unbounded memory.
 */
static napi_value js_dgram_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], handle;
  napi_valuetype t;
  char addr[STRING_ARG_MAX];
  size_t addr_len = 0;
  struct sockaddr_un sun;
  socklen_t sun_len = 0;
  bool bind_it;
  int fd, rc;
  const char *failed = NULL;
  dgram_t *d;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: dgramOpen needs an address or null");
    return NULL;
  }
  NAPI_CALL(env, napi_typeof(env, argv[0], &t));
  if (t == napi_number) {
    /* Adopt an fd that podsock-launch bound before Node started: it must be a unix datagram socket. */
    int32_t given = -1, type = 0, domain = 0;
    socklen_t len = sizeof type;
    NAPI_CALL(env, napi_get_value_int32(env, argv[0], &given));
    if (given < 3 || getsockopt(given, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        (len = sizeof domain, getsockopt(given, SOL_SOCKET, SO_DOMAIN, &domain, &len)) < 0) {
      throw_errno(env, "adopt", given < 3 ? EBADF : errno);
      return NULL;
    }
    if (type != SOCK_DGRAM || domain != AF_UNIX) {
      throw_errno(env, "adopt", ENOTSOCK);
      return NULL;
    }
    if (fcntl(given, F_SETFD, FD_CLOEXEC) < 0 || fcntl(given, F_SETFL, fcntl(given, F_GETFL) | O_NONBLOCK) < 0) {
      throw_errno(env, "adopt", errno);
      return NULL;
    }
    fd = given;
    goto wrap;
  }
  bind_it = t != napi_null && t != napi_undefined;
  if (bind_it) {
    if (arg_string(env, argv[0], "bind", addr, sizeof addr, &addr_len) < 0) return NULL;
    rc = fill_sockaddr_un(addr, addr_len, &sun, &sun_len);
    if (rc < 0) {
      throw_errno(env, "bind", -rc);
      return NULL;
    }
  }

  if (bind_it) fd = notify_socket_bind(&sun, sun_len, &failed);
  else if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
    failed = "socket";
  if (fd < 0) {
    throw_errno(env, failed, errno);
    return NULL;
  }

wrap:
  d = calloc(1, sizeof *d);
  if (d == NULL) {
    close(fd);
    throw_errno(env, "calloc", ENOMEM);
    return NULL;
  }
  handle_init(&d->h, env, dgram_on_env_gone);
  d->fd = fd;
  d->want_ref = true;
  d->poll.data = d;
  if (napi_create_object(env, &handle) != napi_ok ||
      napi_wrap(env, handle, d, dgram_finalize, NULL, NULL) != napi_ok) {
    close(fd);
    free(d);
    NAPI_CALL(env, napi_generic_failure);
  }
  handle_hook(&d->h);
  return handle;
}

/* dgramSend(handle, address, buffer). MSG_DONTWAIT: a full receiver queue is EAGAIN, never a blocked
 * event loop. MSG_NOSIGNAL: no SIGPIPE if the peer went away. */
static napi_value js_dgram_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char addr[STRING_ARG_MAX];
  size_t addr_len, data_len;
  void *data;
  bool is_buffer;
  struct sockaddr_un sun;
  socklen_t sun_len;
  dgram_t *d;
  int rc;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || (d = unwrap_dgram(env, argv[0])) == NULL ||
      arg_string(env, argv[1], "sendto", addr, sizeof addr, &addr_len) < 0)
    return NULL;
  NAPI_CALL(env, napi_is_buffer(env, argv[2], &is_buffer));
  if (!is_buffer) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: data must be a Buffer");
    return NULL;
  }
  NAPI_CALL(env, napi_get_buffer_info(env, argv[2], &data, &data_len));
  if (d->fd < 0) {
    throw_errno(env, "sendto", EBADF);
    return NULL;
  }
  rc = fill_sockaddr_un(addr, addr_len, &sun, &sun_len);
  if (rc < 0) {
    throw_errno(env, "sendto", -rc);
    return NULL;
  }
  for (;;) {
    ssize_t n = sendto(d->fd, data, data_len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sun, sun_len);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    throw_errno(env, "sendto", errno);
    break;
  }
  return NULL;
}

/* One received datagram's facts (pid/uid/gid are -1 when no SCM_CREDENTIALS came with it). */
typedef struct {
  ssize_t len;
  int32_t pid;
  int64_t uid, gid;
  bool truncated;
  uint32_t fd_count;
} received_t;

/* One recvmsg(2) into buf/r. Returns 1 for a datagram, 0 for "nothing more queued", or a negative errno.
 * Every fd that came with SCM_RIGHTS is stored in `fds` (room for SCM_FDS_MAX), its count in *nfds, for
 * the caller to hand to the closer (closer.c): the relay never keeps passed fds, and closing the write end
 * of a sender's pipe is exactly how sd_notify_barrier(3) learns BARRIER=1 was processed. */
static int recv_one(int fd, char *buf, size_t cap, received_t *r, int *fds, unsigned *nfds) {
  union {
    struct cmsghdr align;
    char space[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * SCM_FDS_MAX)];
  } control;
  struct iovec iov = {.iov_base = buf, .iov_len = cap};
  struct msghdr mh;
  ssize_t n;

  for (;;) {
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control.space;
    mh.msg_controllen = sizeof control.space;
    /* MSG_CMSG_CLOEXEC: passed fds must not leak into a child spawned before we close them. */
    n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n >= 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -errno;
  }

  *nfds = 0;
  r->len = n;
  r->pid = -1;
  r->uid = -1;
  r->gid = -1;
  r->fd_count = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET) continue;
    if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
      struct ucred cred;
      memcpy(&cred, CMSG_DATA(c), sizeof cred);
      r->pid = cred.pid;
      r->uid = cred.uid;
      r->gid = cred.gid;
    } else if (c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(0)) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; i++) {
        int passed;
        memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
        /* The kernel passes at most SCM_MAX_FD per message and the control buffer holds no more. */
        if (*nfds < SCM_FDS_MAX) fds[(*nfds)++] = passed;
        else close(passed);
      }
      r->fd_count += (uint32_t)count;
    }
  }
  /* MSG_TRUNC: payload larger than the buffer; MSG_CTRUNC: control data (credentials or fds) cut off,
   * the kernel discards the fds that did not fit (unix(7)). A payload over NOTIFY_MAX_BYTES is too
   * large for systemd either way (it drops it, "exceeded maximum size"). */
  r->truncated = (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || (size_t)n > NOTIFY_MAX_BYTES;
  return 1;
}

/*
 * Close a datagram socket whose receive queue may hold datagrams with passed fds, which its close would
 * release on this thread (closer.c). shutdown(SHUT_RD) first: from then on a sender gets EPIPE
 * (unix_dgram_sendmsg() in net/unix/af_unix.c), so once the queue has been read empty, with the fds
 * handed to the closer, nothing can block the close and it runs here: the name is unbound when this
 * returns. When the queue cannot be emptied (the closer is full, or it holds more than DRAIN_MAX
 * datagrams), the closer thread closes the socket instead.
 */
#define DRAIN_MAX 1024
static void dgram_close_fd(int fd) {
  if (shutdown(fd, SHUT_RD) == 0) {
    for (unsigned i = 0; i < DRAIN_MAX; i++) {
      char byte;
      int fds[SCM_FDS_MAX];
      unsigned nfds = 0;
      received_t r;
      if (closer_reserve(SCM_FDS_MAX, NULL) < 0) break;
      int rc = recv_one(fd, &byte, 1, &r, fds, &nfds);
      closer_commit(fds, nfds, SCM_FDS_MAX);
      if (rc == 0) {
        close(fd);
        return;
      }
      if (rc < 0) break;
    }
  }
  closer_close(fd);
}

static napi_value make_message(napi_env env, const char *buf, const received_t *r) {
  napi_value obj, v;
  if (napi_create_object(env, &obj) != napi_ok) return NULL;
  if (napi_create_buffer_copy(env, (size_t)r->len, buf, NULL, &v) != napi_ok ||
      napi_set_named_property(env, obj, "data", v) != napi_ok)
    return NULL;
  if (napi_create_int32(env, r->pid, &v) != napi_ok || napi_set_named_property(env, obj, "pid", v) != napi_ok)
    return NULL;
  if (napi_create_int64(env, r->uid, &v) != napi_ok || napi_set_named_property(env, obj, "uid", v) != napi_ok)
    return NULL;
  if (napi_create_int64(env, r->gid, &v) != napi_ok || napi_set_named_property(env, obj, "gid", v) != napi_ok)
    return NULL;
  if (napi_get_boolean(env, r->truncated, &v) != napi_ok ||
      napi_set_named_property(env, obj, "truncated", v) != napi_ok)
    return NULL;
  if (napi_create_uint32(env, r->fd_count, &v) != napi_ok ||
      napi_set_named_property(env, obj, "fdCount", v) != napi_ok)
    return NULL;
  return obj;
}

/*
 * The fd is readable: read at most RECV_BATCH_MAX datagrams, then hand them to JS in ONE call
 * onBatch(messages, error). uv_poll is level-triggered, so whatever is left is picked up on the next loop
 * iteration, after timers and other I/O had their turn. A receive error stops polling and is passed as
 * the second argument (the owner decides what to do; it still has to close()).
 *
 * Passed fds go to the closer thread (closer.c). Before each datagram, room for the most one can carry
 * is reserved there; when there is none, polling stops (the datagrams wait in the socket's bounded queue,
 * the sender sees EAGAIN) until the closer wakes `resume`.
 */
static void on_readable(uv_poll_t *handle, int status, int events) {
  dgram_t *d = handle->data;
  napi_env env = d->h.env;
  napi_handle_scope scope;
  napi_value batch, argv[2], self, undefined;
  char buf[NOTIFY_MAX_BYTES + 1];
  uint32_t count = 0;
  int err = 0;
  const char *failed = NULL;

  if (d->h.callback == NULL || d->h.self == NULL || d->fd < 0) return;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_create_array(env, &batch) != napi_ok || napi_get_undefined(env, &undefined) != napi_ok) goto out;

  if (status < 0) {
    err = -status;
    failed = "uv_poll";
  } else {
    while (count < RECV_BATCH_MAX) {
      received_t r = {0};
      int fds[SCM_FDS_MAX];
      unsigned nfds = 0;
      if (closer_reserve(SCM_FDS_MAX, &d->waiter) < 0) {
        uv_poll_stop(&d->poll);
        d->paused = true;
        dgram_update_resume_ref(d);
        break;
      }
      int rc = recv_one(d->fd, buf, sizeof buf, &r, fds, &nfds);
      closer_commit(fds, nfds, SCM_FDS_MAX);
      if (rc == 0) break;
      if (rc < 0) {
        err = -rc;
        failed = "recvmsg";
        break;
      }
      napi_value message = make_message(env, buf, &r);
      if (message == NULL || napi_set_element(env, batch, count, message) != napi_ok) {
        err = ENOMEM;
        failed = "recvmsg";
        break;
      }
      count++;
    }
  }
  if (failed != NULL) uv_poll_stop(&d->poll);
  if (count == 0 && failed == NULL) goto out;

  argv[0] = batch;
  argv[1] = failed != NULL ? errno_error(env, failed, err) : undefined;
  if (argv[1] == NULL) argv[1] = undefined;
  if (napi_get_reference_value(env, d->h.self, &self) != napi_ok) goto out;
  handle_call(&d->h, self, 2, argv);
out:
  napi_close_handle_scope(env, scope);
}

/* The closer has room again (closer.c wakes this from its thread): poll again. */
static void on_resume(uv_async_t *handle) {
  dgram_t *d = handle->data;
  if (!d->paused || !d->polling || d->fd < 0) return;
  d->paused = false;
  dgram_update_resume_ref(d);
  if (uv_poll_start(&d->poll, UV_READABLE, on_readable) < 0) uv_poll_stop(&d->poll);
}

/* Called on the closer's thread with its lock held: only signal the loop. */
static void dgram_wake(closer_waiter_t *w) {
  dgram_t *d = (dgram_t *)((char *)w - offsetof(dgram_t, waiter));
  uv_async_send(&d->resume);
}

/* dgramStart(handle, onBatch): begin watching the fd. Once per socket. */
static napi_value js_dgram_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype t;
  uv_loop_t *loop;
  dgram_t *d;
  int rc;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || (d = unwrap_dgram(env, argv[0])) == NULL) return NULL;
  NAPI_CALL(env, napi_typeof(env, argv[1], &t));
  if (t != napi_function) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: onBatch must be a function");
    return NULL;
  }
  if (d->fd < 0) {
    throw_errno(env, "uv_poll_start", EBADF);
    return NULL;
  }
  if (d->h.callback != NULL || d->polling) {
    throw_errno(env, "uv_poll_start", EALREADY);
    return NULL;
  }
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  rc = uv_poll_init(loop, &d->poll, d->fd);
  if (rc < 0) {
    throw_errno(env, "uv_poll_init", -rc);
    return NULL;
  }
  d->poll.data = d;
  d->polling = true;
  handle_ref(&d->h);
  if (!d->want_ref) uv_unref((uv_handle_t *)&d->poll);
  rc = uv_async_init(loop, &d->resume, on_resume);
  if (rc < 0) {
    dgram_shutdown(d, true);
    throw_errno(env, "uv_async_init", -rc);
    return NULL;
  }
  d->resume.data = d;
  d->resume_init = true;
  handle_ref(&d->h);
  d->waiter.wake = dgram_wake;
  dgram_update_resume_ref(d);

  if (handle_js_take(&d->h, argv[1], argv[0], "PodsockDgramSocket") < 0) {
    dgram_shutdown(d, true);
    NAPI_CALL(env, napi_generic_failure);
  }
  rc = uv_poll_start(&d->poll, UV_READABLE, on_readable);
  if (rc < 0) {
    dgram_shutdown(d, true);
    throw_errno(env, "uv_poll_start", -rc);
  }
  return NULL;
}

/* dgramClose(handle): stop receiving, close the fd, drop the references. Idempotent. */
static napi_value js_dgram_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  dgram_t *d;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || (d = unwrap_dgram(env, argv[0])) == NULL) return NULL;
  dgram_shutdown(d, true);
  return NULL;
}

/* dgramSetRef(handle, on): whether a receiving socket keeps the event loop (and so the process) alive. */
static napi_value js_dgram_set_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool on;
  dgram_t *d;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || (d = unwrap_dgram(env, argv[0])) == NULL) return NULL;
  NAPI_CALL(env, napi_get_value_bool(env, argv[1], &on));
  d->want_ref = on;
  if (d->polling) {
    if (on) uv_ref((uv_handle_t *)&d->poll);
    else uv_unref((uv_handle_t *)&d->poll);
  }
  dgram_update_resume_ref(d);
  return NULL;
}

/* dgramFd(handle) -> fd, or -1 once closed. */
static napi_value js_dgram_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  dgram_t *d;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || (d = unwrap_dgram(env, argv[0])) == NULL) return NULL;
  NAPI_CALL(env, napi_create_int32(env, d->fd, &result));
  return result;
}


/*
 * dgramProbe(path) -> null | Error: whether a datagram socket is bound at the unix socket file `path`,
 * asked with connect(2) from a datagram socket of our own, which sends nothing: null when one is (connect
 * succeeds), else the Error with the errno, ECONNREFUSED when the file is there and nobody holds it (unix(7):
 * also a file that is no socket), EPROTOTYPE when a stream socket holds it.
 */
static napi_value js_dgram_probe(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  char addr[STRING_ARG_MAX];
  size_t addr_len = 0;
  struct sockaddr_un sun;
  socklen_t sun_len = 0;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_string(env, argv[0], "connect", addr, sizeof addr, &addr_len) < 0) return NULL;
  int rc = fill_sockaddr_un(addr, addr_len, &sun, &sun_len);
  if (rc < 0) {
    throw_errno(env, "connect", -rc);
    return NULL;
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    throw_errno(env, "socket", errno);
    return NULL;
  }
  int err = connect(fd, (const struct sockaddr *)&sun, sun_len) == 0 ? 0 : errno;
  close(fd);
  if (err == 0) NAPI_CALL(env, napi_get_null(env, &result));
  else result = errno_error(env, "connect", err);
  return result;
}

napi_status podsock_dgram_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"dgramOpen", NULL, js_dgram_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dgramSend", NULL, js_dgram_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dgramStart", NULL, js_dgram_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dgramClose", NULL, js_dgram_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dgramSetRef", NULL, js_dgram_set_ref, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dgramFd", NULL, js_dgram_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dgramProbe", NULL, js_dgram_probe, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
