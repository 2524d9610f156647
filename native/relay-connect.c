/*
 * relayConnect: the relay's connect step (relay.h). A new backend socket is connected, then the relay
 * starts between it and the client on the thread's engine (relay-poll.c or relay-uring.c).
 */
#include "relay.h"
#include "internal.h"
#include "netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Optional Buffer argument (null/undefined: none). 0, or a negative errno with an exception pending. */
static int arg_optional_buffer(napi_env env, napi_value v, void **data, size_t *len) {
  napi_valuetype t;
  bool is_buffer = false;
  *data = NULL;
  *len = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return -EINVAL;
  if (t == napi_null || t == napi_undefined) return 0;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, v, data, len) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: initial bytes must be a Buffer or null");
    return -EINVAL;
  }
  return 0;
}


/*
 * relayConnect(clientFd, address, port, timeoutMs, initial, ended, spliceAfter, onEvent[, netnsFd]) -> handle
 *
 * The proxy's per-connection fast path in one call: connect a new non-blocking socket to the backend
 * (`address` a numeric IPv4/IPv6 host and `port`, or, with port -1, a unix path or '@abstract' name),
 * wait for writability with a uv_poll, check SO_ERROR (connect(2), EINPROGRESS), then relay between
 * clientFd and it (relay.h), `initial` and `ended` describing what was read from the client before, and
 * `spliceAfter` when a direction switches to splice(2). No Node socket, promise or timer exists for the
 * backend connection: this is what makes a new connection per request cheap (it used to be a
 * net.Socket, an AbortController and a timer each).
 * netnsFd (an open /proc/PID/ns/net, -1 or absent for none) creates the backend socket inside that network
 * namespace (netns.c), e.g. to reach a container's loopback.
 *
 * onEvent(err, kind) is called from later event-loop iterations, except RELAY_CONNECTED for a connect
 * that completed at once, which is reported before relayConnect returns:
 * - kind RELAY_CONNECTED (0), at most once: connected; the relay owns clientFd from now on;
 * - kind RELAY_CONNECT_FAILED (2): socket(), connect() or the deadline failed (err.code 'ECONNREFUSED',
 *   'ETIMEDOUT', 'EAGAIN' for a unix backlog that is full...); the backend socket is closed and clientFd
 *   is the caller's again, untouched, so it can retry or close it;
 * - kind RELAY_DONE (1), after RELAY_CONNECTED, exactly once: both fds are closed; err is null (a clean
 *   end on both sides, or relayAbort) or the first error, carrying `code`, `errno` and `syscall`.
 * relayAbort() resets both sides in any phase (then RELAY_DONE with null); relayCancel() gives a
 * connecting client back without any further callback. A throw (bad arguments, no memory) leaves clientFd
 * with the caller.
 */

/* The deadline passed, or a failure of socket()/connect() recorded at once is due to be reported. */
static void relay_connect_fail(relay_t *r, int err, const char *syscall) {
  r->fd[0] = -1; /* the client goes back to the caller, unread and open */
  r->connecting = false;
  r->connect_failed = true;
  relay_finish(r, err, syscall, false);
}

static void relay_on_connect_timer(uv_timer_t *timer) {
  relay_t *r = timer->data;
  if (r->finished || !r->connecting) return;
  if (r->deferred_err != 0) relay_connect_fail(r, r->deferred_err, r->deferred_syscall);
  else relay_connect_fail(r, ETIMEDOUT, "connect");
}

/* The backend accepted: start relaying (poll engine: poll[1] exists already, stopped). */
static void relay_connected(relay_t *r, uv_loop_t *loop) {
  r->connecting = false;
  relay_touch(r); /* the idle clock starts when relaying does, not when the connect began */
  /* The relay owns the client from here on: every failure below resets it. uv_poll_init() makes the fd
   * non-blocking (libuv uv__nonblock); the ring needs neither. */
  if (!r->uring) {
    int rc = uv_poll_init(loop, &r->poll[0], r->fd[0]);
    if (rc < 0) {
      relay_finish(r, -rc, "uv_poll_init", true);
      return;
    }
    r->poll[0].data = r;
    r->poll_init[0] = true;
  }
  relay_call(r, RELAY_CONNECTED);
  if (r->finished) return; /* aborted from the callback */
  if (r->uring) ring_start(r);
  else relay_step(r, RELAY_BOTH);
}

static void relay_on_connect_poll(uv_poll_t *handle, int status, int events) {
  relay_t *r = handle->data;
  int soerr = 0;
  socklen_t len = sizeof soerr;
  if (r->finished || !r->connecting) return;
  /* A refused connect shows as EPOLLERR (libuv: status UV_EBADF) with the reason in SO_ERROR. */
  if (getsockopt(r->fd[1], SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
  if (soerr == 0 && status < 0) soerr = -status;
  if (soerr != 0) {
    relay_connect_fail(r, soerr, "connect");
    return;
  }
  uv_timer_stop(&r->timer);
  uv_poll_stop(&r->poll[1]);
  r->interest[1] = 0;
  relay_connected(r, uv_handle_get_loop((uv_handle_t *)handle));
}

/* Fill a sockaddr from a numeric host and port (inet_pton first; getaddrinfo only for forms like a scoped
 * 'fe80::1%eth0', with AI_NUMERICHOST so it never does a lookup). Returns 0 or a negative errno. */
static int fill_sockaddr_in(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *sin = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    *len = sizeof *sin;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    *len = sizeof *sin6;
    return 0;
  }
  struct addrinfo hints, *res = NULL;
  char service[16];
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  snprintf(service, sizeof service, "%d", port);
  if (getaddrinfo(host, service, &hints, &res) != 0 || res == NULL) return -EINVAL;
  if (res->ai_addrlen > sizeof *ss) {
    freeaddrinfo(res);
    return -EINVAL;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

static napi_value js_relay_connect(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9], handle;
  napi_valuetype t;
  int32_t client, port, timeout_ms, splice_after, nsfd = -1;
  char address[STRING_ARG_MAX];
  size_t address_len;
  void *initial;
  size_t initial_len;
  bool ended;
  struct sockaddr_storage ss;
  socklen_t ss_len = 0;
  uv_loop_t *loop;
  relay_t *r;
  int err, one = 1;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8 || arg_int32(env, argv[0], "clientFd", &client) < 0 ||
      arg_string(env, argv[1], "connect", address, sizeof address, &address_len) < 0 ||
      arg_int32(env, argv[2], "port", &port) < 0 || arg_int32(env, argv[3], "timeoutMs", &timeout_ms) < 0 ||
      arg_optional_buffer(env, argv[4], &initial, &initial_len) < 0 ||
      napi_get_value_bool(env, argv[5], &ended) != napi_ok ||
      arg_int32(env, argv[6], "spliceAfter", &splice_after) < 0 || napi_typeof(env, argv[7], &t) != napi_ok ||
      t != napi_function || (argc > 8 && arg_int32(env, argv[8], "netnsFd", &nsfd) < 0)) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending)
      napi_throw_type_error(env, "EINVAL", "podsock_native: relayConnect(clientFd, address, port, timeoutMs, initial, ended, spliceAfter, onEvent[, netnsFd])");
    return NULL;
  }
  if (client < 0) {
    throw_errno(env, "relayConnect", EBADF);
    return NULL;
  }
  if (port > 65535 || timeout_ms < 1) {
    throw_errno(env, "connect", EINVAL);
    return NULL;
  }
  if (port < 0) {
    err = fill_sockaddr_un(address, address_len, (struct sockaddr_un *)&ss, &ss_len);
  } else {
    err = fill_sockaddr_in(address, port, &ss, &ss_len);
  }
  if (err != 0) {
    throw_errno(env, "connect", -err);
    return NULL;
  }
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));

  r = calloc(1, sizeof *r);
  if (r == NULL) {
    throw_errno(env, "calloc", ENOMEM);
    return NULL;
  }
  handle_init(&r->h, env, relay_on_env_gone);
  r->loop = loop;
  r->fd[0] = client;
  r->fd[1] = -1;
  r->connecting = true;
  r->dir[0].pipe[0] = r->dir[0].pipe[1] = r->dir[1].pipe[0] = r->dir[1].pipe[1] = -1;
  int32_t id = relay_register(r);
  if (id < 0 || relay_dir_init(&r->dir[0], 0, 1, initial, initial_len, ended, splice_after) != 0 ||
      relay_dir_init(&r->dir[1], 1, 0, NULL, 0, false, splice_after) != 0) {
    relay_dir_free(&r->dir[0]);
    if (id >= 0) relay_unregister(r);
    free(r);
    throw_errno(env, "malloc", ENOMEM);
    return NULL;
  }
  /* From here on failures go through relay_finish, with the client handed back. */
  if (napi_create_int32(env, id, &handle) != napi_ok ||
      handle_js_take(&r->h, argv[7], NULL, "PodsockRelay") < 0) {
    handle_js_release(&r->h);
    r->h.env_gone = true;
    r->fd[0] = -1;
    relay_finish(r, ENOMEM, "napi_async_init", false);
    throw_errno(env, "napi_async_init", ENOMEM);
    return NULL;
  }
  handle_hook(&r->h);
  if (ring_get(env, loop) != NULL) ring_take(r);

  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  r->timer_init = true;

  /* With netnsFd the backend socket is made inside the container's network namespace (netns.c). */
  const char *failed_call;
  int fd = netns_socket(nsfd, ss.ss_family, SOCK_STREAM, &failed_call);
  if (fd < 0) {
    r->deferred_err = -fd;
    r->deferred_syscall = failed_call;
  } else {
    r->fd[1] = fd;
    /* Node's net.connect sets no delay for the proxy's TCP backends too (upstream.ts did): small replies
     * must not wait for an ACK (Nagle, tcp(7) TCP_NODELAY). */
    if (ss.ss_family != AF_UNIX) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc;
    do rc = connect(fd, (struct sockaddr *)&ss, ss_len);
    while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno != EINPROGRESS) {
      /* A unix backend answers at once: ENOENT, ECONNREFUSED, EAGAIN for a full backlog (unix(7)). */
      r->deferred_err = errno;
      r->deferred_syscall = "connect";
    } else if (rc < 0) {
      /* On loopback (and through a container's bridge) the kernel usually completes the handshake
       * inside connect() itself (softirq processing on the way out), so one poll(2) with no timeout
       * mostly finds it settled: the relay then starts now, without an epoll registration and a loop
       * turn spent only on waiting for writability. */
      struct pollfd pfd = {.fd = fd, .events = POLLOUT};
      if (poll(&pfd, 1, 0) == 1 && pfd.revents == POLLOUT) rc = 0;
    }
    if (rc == 0) {
      int soerr = 0;
      socklen_t len = sizeof soerr;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) soerr = errno;
      if (soerr == 0 && r->uring) {
        relay_connected(r, loop); /* RELAY_CONNECTED synchronously, as below */
        return handle;
      }
      if (soerr == 0) {
        rc = uv_poll_init(loop, &r->poll[1], fd);
        if (rc == 0) {
          r->poll[1].data = r;
          r->poll_init[1] = true;
          /* RELAY_CONNECTED is reported synchronously, from inside this call (see the contract). */
          relay_connected(r, loop);
          return handle;
        }
        r->deferred_err = -rc;
        r->deferred_syscall = "uv_poll_init";
      } else {
        r->deferred_err = soerr;
        r->deferred_syscall = "connect";
      }
    }
  }
  if (r->deferred_err == 0) {
    /* Connected at once (unix) or in progress (TCP): either way writability says it is settled, and the
     * outcome is reported from the loop like every other one. */
    int rc = uv_poll_init(loop, &r->poll[1], r->fd[1]);
    if (rc == 0) {
      r->poll[1].data = r;
      r->poll_init[1] = true;
      rc = uv_poll_start(&r->poll[1], UV_WRITABLE, relay_on_connect_poll);
    }
    if (rc < 0) {
      r->deferred_err = -rc;
      r->deferred_syscall = "uv_poll_start";
    } else {
      r->interest[1] = UV_WRITABLE;
    }
  }
  uv_timer_start(&r->timer, relay_on_connect_timer, r->deferred_err != 0 ? 0 : (uint64_t)timeout_ms, 0);
  return handle;
}

/* relayCancel(handle) -> bool: a relay that is still connecting stops, closes its backend socket and gives
 * the client fd back to the caller without any further callback (true). false once it connected or ended. */
static napi_value js_relay_cancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  relay_t *r;
  bool cancelled = false;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_relay(env, argv[0], &r) < 0) return NULL;
  if (r != NULL && r->connecting && !r->finished) {
    r->fd[0] = -1;
    r->connecting = false;
    r->silent = true;
    relay_finish(r, 0, NULL, false);
    cancelled = true;
  }
  NAPI_CALL(env, napi_get_boolean(env, cancelled, &result));
  return result;
}

napi_status podsock_relay_connect_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"relayConnect", NULL, js_relay_connect, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayCancel", NULL, js_relay_cancel, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
