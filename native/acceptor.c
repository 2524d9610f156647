/* The acceptor: the proxy's accept loop, on a uv_poll of Node's loop. */
#include "internal.h"
#include "handle.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/*
 * acceptStart(fd, backlog, onAccept) -> handle
 *
 * Accept connections on a listening stream socket with accept4(SOCK_NONBLOCK | SOCK_CLOEXEC), driven by
 * a uv_poll on Node's loop, and pass each new fd to onAccept(fd, undefined): the accepted connection
 * never becomes a Node socket, so the proxy can hand it to relayConnect() in one more call. Like libuv's
 * own loop (src/unix/stream.c uv__server_io) it accepts until EAGAIN, at most ACCEPT_BATCH_MAX per
 * wake-up, and checks after every callback whether acceptStop() was called from it: stopping inside
 * onAccept stops exactly there, the rest stays queued in the kernel.
 *
 * The acceptor owns `fd` (the proxy passes a dup of systemd's socket): acceptStop() closes that fd only,
 * it never shutdown()s the shared socket. listen(fd, backlog) is called first, as uv_listen() does for a
 * Node server, so the backlog is the caller's rather than whatever the socket had. Accepted TCP
 * connections get TCP_NODELAY (what the proxy's net.Server did with `noDelay: true`).
 *
 * An accept error is passed as onAccept(-1, err) and pauses accepting for ACCEPT_PAUSE_MS: EMFILE and
 * friends leave the connection queued, and a level-triggered poll would otherwise spin on it. ECONNABORTED
 * (the client left before it was accepted) and EINTR are skipped silently.
 */

/* Connections accepted per wake-up before yielding to the loop (timers, other I/O). */
#define ACCEPT_BATCH_MAX 128
/* How long accepting pauses after an accept error (EMFILE, ENFILE, ENOBUFS...). */
#define ACCEPT_PAUSE_MS 100

typedef struct {
  handle_t h;               /* first: owners (wrapper, poll, timer), onAccept while accepting */
  int fd;                   /* -1 once closed */
  bool tcp;                 /* AF_INET/AF_INET6: set TCP_NODELAY on accepted sockets */
  bool poll_init, timer_init;
  uv_poll_t poll;
  uv_timer_t timer;         /* resumes accepting after an error */
} acceptor_t;

_Static_assert(offsetof(acceptor_t, h) == 0, "handle_t comes first");

/* Stop accepting and close the fd. Idempotent. `js`: Node-API references may be released here. */
static void acceptor_shutdown(acceptor_t *a, bool js) {
  if (a->poll_init) {
    a->poll_init = false;
    uv_close((uv_handle_t *)&a->poll, handle_on_uv_closed);
  }
  if (a->timer_init) {
    a->timer_init = false;
    uv_close((uv_handle_t *)&a->timer, handle_on_uv_closed);
  }
  if (a->fd >= 0) {
    close(a->fd);
    a->fd = -1;
  }
  if (js) handle_js_drop(&a->h);
  handle_unhook(&a->h);
}

static void acceptor_on_env_gone(handle_t *h) {
  acceptor_shutdown((acceptor_t *)h, false);
}

static void acceptor_finalize(napi_env env, void *data, void *hint) {
  acceptor_t *a = data;
  acceptor_shutdown(a, false);
  handle_unref(&a->h);
}

/* onAccept(fd, err). Returns false when accepting must not go on (stopped, or the callback failed). */
static bool acceptor_call(acceptor_t *a, int fd, int err) {
  napi_env env = a->h.env;
  napi_handle_scope scope;
  napi_value argv[2], self;
  bool ok = false;
  if (a->h.callback == NULL || a->h.self == NULL) return false;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return false;
  if (napi_create_int32(env, fd, &argv[0]) != napi_ok) goto out;
  argv[1] = err != 0 ? errno_error(env, "accept4", err) : NULL;
  if (argv[1] == NULL && napi_get_undefined(env, &argv[1]) != napi_ok) goto out;
  if (napi_get_reference_value(env, a->h.self, &self) != napi_ok) goto out;
  ok = handle_call(&a->h, self, 2, argv) == napi_ok;
out:
  napi_close_handle_scope(env, scope);
  return ok && a->fd >= 0 && a->poll_init;
}

static void acceptor_on_readable(uv_poll_t *handle, int status, int events);

static void acceptor_on_timer(uv_timer_t *timer) {
  acceptor_t *a = timer->data;
  if (a->fd >= 0 && a->poll_init) uv_poll_start(&a->poll, UV_READABLE, acceptor_on_readable);
}

static void acceptor_on_readable(uv_poll_t *handle, int status, int events) {
  acceptor_t *a = handle->data;
  int one = 1;
  for (int n = 0; n < ACCEPT_BATCH_MAX && a->fd >= 0; n++) {
    int fd = status < 0 ? -1 : accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (a->tcp) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (!acceptor_call(a, fd, 0)) return;
      continue;
    }
    int err = status < 0 ? -status : errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return;
    if (err == EINTR || err == ECONNABORTED) continue;
    /* EMFILE, ENFILE, ENOBUFS, ENOMEM, EPERM (a firewall)...: report, then pause instead of spinning. */
    uv_poll_stop(&a->poll);
    uv_timer_start(&a->timer, acceptor_on_timer, ACCEPT_PAUSE_MS, 0);
    acceptor_call(a, -1, err);
    return;
  }
}

static acceptor_t *unwrap_acceptor(napi_env env, napi_value obj) {
  void *data = NULL;
  if (napi_unwrap(env, obj, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: not an acceptor handle");
    return NULL;
  }
  return data;
}

static napi_value js_accept_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], handle;
  napi_valuetype t;
  int32_t fd, backlog;
  int domain = 0, flags, rc;
  socklen_t optlen = sizeof domain;
  uv_loop_t *loop;
  acceptor_t *a;
  const char *failed = NULL;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || arg_int32(env, argv[0], "fd", &fd) < 0 || arg_int32(env, argv[1], "backlog", &backlog) < 0)
    return NULL;
  NAPI_CALL(env, napi_typeof(env, argv[2], &t));
  if (t != napi_function) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: onAccept must be a function");
    return NULL;
  }
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  /* The fd is taken over only once everything that can fail synchronously has succeeded. */
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &optlen) < 0) failed = "getsockopt(SO_DOMAIN)";
  else if ((flags = fcntl(fd, F_GETFL)) < 0 || ((flags & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0))
    failed = "fcntl(O_NONBLOCK)";
  else if (backlog >= 0 && listen(fd, backlog) < 0) failed = "listen";
  if (failed != NULL) {
    throw_errno(env, failed, errno);
    return NULL;
  }
  a = calloc(1, sizeof *a);
  if (a == NULL) {
    throw_errno(env, "calloc", ENOMEM);
    return NULL;
  }
  handle_init(&a->h, env, acceptor_on_env_gone);
  a->fd = -1;
  a->tcp = domain == AF_INET || domain == AF_INET6;
  a->poll.data = a;
  a->timer.data = a;
  if (napi_create_object(env, &handle) != napi_ok || napi_wrap(env, handle, a, acceptor_finalize, NULL, NULL) != napi_ok) {
    free(a);
    NAPI_CALL(env, napi_generic_failure);
  }
  if (handle_js_take(&a->h, argv[2], handle, "PodsockAcceptor") < 0) {
    handle_js_release(&a->h);
    NAPI_CALL(env, napi_generic_failure);
  }
  rc = uv_poll_init(loop, &a->poll, fd);
  if (rc < 0) {
    handle_js_release(&a->h);
    throw_errno(env, "uv_poll_init", -rc);
    return NULL;
  }
  a->fd = fd;
  a->poll_init = true;
  handle_ref(&a->h);
  uv_timer_init(loop, &a->timer);
  a->timer_init = true;
  handle_ref(&a->h);
  handle_hook(&a->h);
  rc = uv_poll_start(&a->poll, UV_READABLE, acceptor_on_readable);
  if (rc < 0) {
    a->fd = -1; /* not taken over: the caller still owns it */
    acceptor_shutdown(a, true);
    throw_errno(env, "uv_poll_start", -rc);
    return NULL;
  }
  return handle;
}

/* acceptStop(handle): stop accepting and close the acceptor's fd. Idempotent; callable from onAccept. */
static napi_value js_accept_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  acceptor_t *a;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || (a = unwrap_acceptor(env, argv[0])) == NULL) return NULL;
  acceptor_shutdown(a, true);
  return NULL;
}

napi_status podsock_acceptor_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"acceptStart", NULL, js_accept_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"acceptStop", NULL, js_accept_stop, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
