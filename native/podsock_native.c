/*
 * podsock_native: the few socket operations core Node cannot do.
 *
 * - unix datagram sockets (NOTIFY_SOCKET is SOCK_DGRAM, often abstract '@name'); Node's dgram module only
 *   knows udp4/udp6 and net.connect() to a datagram path fails with EPROTOTYPE;
 * - receiving datagrams WITH the sender's credentials (SO_PASSCRED / SCM_CREDENTIALS, unix(7)), which is how
 *   the notify relay knows which process spoke, and closing fds passed with SCM_RIGHTS (sd_notify_barrier(3));
 * - duplicating, closing and inspecting raw fds inherited through socket activation (sd_listen_fds(3)), and
 *   creating listening sockets without Node adopting them (adoption sets O_NONBLOCK on the shared open file
 *   description and shrinks the backlog to 511).
 *
 * Everything is synchronous and non-blocking except receiving, which watches the fd with a uv_poll_t on
 * Node's own loop: no thread pool, no thread blocked in recvmsg(2).
 *
 * Errors are thrown as JS Errors carrying `code` (the errno name, e.g. 'ENOENT'), `errno` and `syscall`;
 * src/sd/native.ts turns them into PodsockError('PODSOCK_ERR_NATIVE'). Arguments are validated there too;
 * the checks here only keep a wrong call from crashing the process.
 */
#include "notify-socket.h"
#include "closer.h"
#include "memory.h"
#include "sock-diag.h"
#include "netns.h"
#include "spawn.h"
#include "uring.h"
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

/* systemd's NOTIFY_BUFFER_MAX (= PIPE_BUF, src/basic/constants.h). One byte more is read so that a larger
 * datagram is seen as too large even when the kernel does not report MSG_TRUNC for it. */
#define NOTIFY_MAX_BYTES 4096
/* Datagrams read per wake-up: a flood yields to the event loop after this many (timers, I/O keep running). */
#define RECV_BATCH_MAX 64
/* SCM_MAX_FD: the most fds one message can carry (unix(7)). */
#define SCM_FDS_MAX 253
/* Longest string argument accepted at all (addresses are far shorter; this only bounds the copy). */
#define STRING_ARG_MAX 1024

/* ------------------------------------------------------------------------------------------------ */
/* Errors                                                                                            */

/* Build an Error for errno `err` from `syscall`: message "syscall: ENAME (description)". */
static napi_value errno_error(napi_env env, const char *syscall, int err) {
  char name[64];
  char desc[256];
  char message[400];
  napi_value code_v, message_v, error, errno_v, syscall_v;

  uv_err_name_r(-err, name, sizeof name);
  uv_strerror_r(-err, desc, sizeof desc);
  snprintf(message, sizeof message, "%s: %s (%s)", syscall, name, desc);
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code_v) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_v) != napi_ok ||
      napi_create_error(env, code_v, message_v, &error) != napi_ok)
    return NULL;
  if (napi_create_int32(env, err, &errno_v) == napi_ok) napi_set_named_property(env, error, "errno", errno_v);
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_v) == napi_ok)
    napi_set_named_property(env, error, "syscall", syscall_v);
  return error;
}

/* Shared with spawn.c (declared in spawn.h). */
void throw_errno(napi_env env, const char *syscall, int err) {
  napi_value error = errno_error(env, syscall, err);
  if (error != NULL) napi_throw(env, error);
}

/* Fail a call whose napi_* step failed: make sure an exception is pending and return NULL to JS. */
#define NAPI_CALL(env, call)                                                                             \
  do {                                                                                                   \
    if ((call) != napi_ok) {                                                                             \
      bool pending_ = false;                                                                             \
      napi_is_exception_pending((env), &pending_);                                                       \
      if (!pending_) napi_throw_error((env), "EINVAL", "podsock_native: Node-API call failed: " #call); \
      return NULL;                                                                                       \
    }                                                                                                    \
  } while (0)

/* ------------------------------------------------------------------------------------------------ */
/* Argument helpers                                                                                  */

static int arg_int32(napi_env env, napi_value v, const char *what, int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_int32(env, v, out) != napi_ok) {
    char message[128];
    snprintf(message, sizeof message, "podsock_native: %s must be a number", what);
    napi_throw_type_error(env, "EINVAL", message);
    return -1;
  }
  return 0;
}

/* Copy a JS string into buf (NUL-terminated); *len gets its UTF-8 length. Too long is ENAMETOOLONG. */
static int arg_string(napi_env env, napi_value v, const char *syscall, char *buf, size_t cap, size_t *len) {
  napi_valuetype t;
  size_t full;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, v, NULL, 0, &full) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: expected a string");
    return -1;
  }
  if (full >= cap) {
    throw_errno(env, syscall, ENAMETOOLONG);
    return -1;
  }
  if (napi_get_value_string_utf8(env, v, buf, cap, len) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: expected a string");
    return -1;
  }
  return 0;
}

/*
 * Fill a sockaddr_un from "/path" (or any non-'@' path) or "@abstract" (unix(7): an abstract name is a
 * leading NUL followed by the name; its length is given by addrlen, not by a terminating NUL, which is why
 * addrlen is computed exactly and nothing is padded). Returns 0 or a negative errno.
 */
static int fill_sockaddr_un(const char *addr, size_t len, struct sockaddr_un *sun, socklen_t *sun_len) {
  memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  if (len == 0 || memchr(addr, '\0', len) != NULL) return -EINVAL;
  if (addr[0] == '@') {
    size_t name_len = len - 1;
    if (name_len == 0) return -EINVAL;
    if (name_len > sizeof sun->sun_path - 1) return -ENAMETOOLONG;
    memcpy(sun->sun_path + 1, addr + 1, name_len);
    *sun_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + name_len);
  } else {
    /* Keep room for the terminating NUL: not required by Linux, but other readers of the path expect it. */
    if (len > sizeof sun->sun_path - 1) return -ENAMETOOLONG;
    memcpy(sun->sun_path, addr, len);
    *sun_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Raw fds                                                                                           */

/* dupFd(fd): fcntl(F_DUPFD_CLOEXEC, 3) so a copy never lands on 0-2 and is not inherited by accident. */
static napi_value js_dup_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int32(env, argv[0], "fd", &fd) < 0) return NULL;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) {
    throw_errno(env, "fcntl(F_DUPFD_CLOEXEC)", errno);
    return NULL;
  }
  NAPI_CALL(env, napi_create_int32(env, copy, &result));
  return result;
}

/* closeFd(fd). EINTR counts as closed: on Linux the fd is released before close(2) can be interrupted
 * (close(2), "Dealing with error returns"), so retrying could close an fd another thread just got. */
static napi_value js_close_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int32(env, argv[0], "fd", &fd) < 0) return NULL;
  if (close(fd) < 0 && errno != EINTR) throw_errno(env, "close", errno);
  return NULL;
}

/* setCloexec(fd, on): toggles FD_CLOEXEC (fcntl(2) F_GETFD/F_SETFD), leaving the other fd flags alone. */
static napi_value js_set_cloexec(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  bool on;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_int32(env, argv[0], "fd", &fd) < 0) return NULL;
  NAPI_CALL(env, napi_get_value_bool(env, argv[1], &on));
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) {
    throw_errno(env, "fcntl(F_GETFD)", errno);
    return NULL;
  }
  int wanted = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (wanted != flags && fcntl(fd, F_SETFD, wanted) < 0) throw_errno(env, "fcntl(F_SETFD)", errno);
  return NULL;
}

static int set_string(napi_env env, napi_value obj, const char *key, const char *value, size_t len) {
  napi_value v;
  if (napi_create_string_utf8(env, value, len, &v) != napi_ok) return -1;
  return napi_set_named_property(env, obj, key, v) == napi_ok ? 0 : -1;
}

/*
 * inspectFd(fd) -> { fd, family, type, listening, host?, port?, path? }
 * SO_DOMAIN, SO_TYPE and SO_ACCEPTCONN are read with getsockopt (socket(7)); the local address with
 * getsockname(2). ENOTSOCK means "not a socket" (pipe, file, tty) and is an answer, not an error;
 * EBADF (closed fd) is an error, detected first with F_GETFD so it is not mistaken for ENOTSOCK.
 */
static napi_value js_inspect_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, v;
  int32_t fd;
  int domain = -1, type = -1, accepting = 0;
  socklen_t optlen;
  const char *family_s = "other", *type_s = "other";

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int32(env, argv[0], "fd", &fd) < 0) return NULL;
  if (fcntl(fd, F_GETFD) < 0) {
    throw_errno(env, "fcntl(F_GETFD)", errno);
    return NULL;
  }

  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_int32(env, fd, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "fd", v));

  optlen = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) < 0) {
    if (errno != ENOTSOCK) {
      throw_errno(env, "getsockopt(SO_TYPE)", errno);
      return NULL;
    }
    NAPI_CALL(env, set_string(env, result, "family", "other", NAPI_AUTO_LENGTH) == 0 ? napi_ok : napi_generic_failure);
    NAPI_CALL(env, set_string(env, result, "type", "other", NAPI_AUTO_LENGTH) == 0 ? napi_ok : napi_generic_failure);
    NAPI_CALL(env, napi_get_boolean(env, false, &v));
    NAPI_CALL(env, napi_set_named_property(env, result, "listening", v));
    return result;
  }
  optlen = sizeof domain;
  if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &optlen) < 0) {
    throw_errno(env, "getsockopt(SO_DOMAIN)", errno);
    return NULL;
  }
  optlen = sizeof accepting;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &optlen) < 0) {
    throw_errno(env, "getsockopt(SO_ACCEPTCONN)", errno);
    return NULL;
  }

  switch (domain) {
    case AF_INET: family_s = "inet"; break;
    case AF_INET6: family_s = "inet6"; break;
    case AF_UNIX: family_s = "unix"; break;
    default: break;
  }
  switch (type) {
    case SOCK_STREAM: type_s = "stream"; break;
    case SOCK_DGRAM: type_s = "dgram"; break;
    case SOCK_SEQPACKET: type_s = "seqpacket"; break;
    default: break;
  }
  NAPI_CALL(env, set_string(env, result, "family", family_s, NAPI_AUTO_LENGTH) == 0 ? napi_ok : napi_generic_failure);
  NAPI_CALL(env, set_string(env, result, "type", type_s, NAPI_AUTO_LENGTH) == 0 ? napi_ok : napi_generic_failure);
  NAPI_CALL(env, napi_get_boolean(env, accepting != 0, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "listening", v));

  if (domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX) return result;

  struct sockaddr_storage ss;
  socklen_t sslen = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &sslen) < 0) {
    throw_errno(env, "getsockname", errno);
    return NULL;
  }
  if (domain == AF_INET || domain == AF_INET6) {
    char host[INET6_ADDRSTRLEN];
    int port;
    if (domain == AF_INET) {
      struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
      port = ntohs(sin->sin_port);
    } else {
      struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
      port = ntohs(sin6->sin6_port);
    }
    NAPI_CALL(env, set_string(env, result, "host", host, NAPI_AUTO_LENGTH) == 0 ? napi_ok : napi_generic_failure);
    NAPI_CALL(env, napi_create_int32(env, port, &v));
    NAPI_CALL(env, napi_set_named_property(env, result, "port", v));
  } else {
    /* unix(7): unnamed sockets have addrlen == sizeof(sa_family_t); abstract ones start with a NUL and
     * their name is exactly the remaining addrlen bytes; pathnames are NUL-terminated (usually). */
    struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
    size_t base = offsetof(struct sockaddr_un, sun_path);
    char path[sizeof sun->sun_path + 1];
    size_t len = 0;
    if (sslen > base) {
      size_t n = sslen - base;
      if (n > sizeof sun->sun_path) n = sizeof sun->sun_path;
      if (sun->sun_path[0] == '\0') {
        path[0] = '@';
        memcpy(path + 1, sun->sun_path + 1, n - 1);
        len = n;
      } else {
        len = strnlen(sun->sun_path, n);
        memcpy(path, sun->sun_path, len);
      }
    }
    NAPI_CALL(env, set_string(env, result, "path", path, len) == 0 ? napi_ok : napi_generic_failure);
  }
  return result;
}

/* ------------------------------------------------------------------------------------------------ */
/* Listening stream sockets                                                                          */

/*
 * listenTcp(host, port, backlog, ipv6Only) -> fd. host is a numeric IPv4/IPv6 literal (AI_NUMERICHOST:
 * no name lookups, which would block). ipv6Only is 1, 0, or -1 to keep the kernel default
 * (net.ipv6.bindv6only). SO_REUSEADDR lets a restarted service rebind while old connections sit in
 * TIME_WAIT (socket(7)). The fd is blocking and close-on-exec.
 */
static napi_value js_listen_tcp(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  char host[STRING_ARG_MAX];
  char service[16];
  size_t host_len;
  int32_t port, backlog, v6only;
  struct addrinfo hints, *res = NULL;
  int fd = -1, one = 1, rc, err;
  const char *failed = NULL;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || arg_string(env, argv[0], "getaddrinfo", host, sizeof host, &host_len) < 0 ||
      arg_int32(env, argv[1], "port", &port) < 0 || arg_int32(env, argv[2], "backlog", &backlog) < 0 ||
      arg_int32(env, argv[3], "ipv6Only", &v6only) < 0)
    return NULL;
  if (port < 0 || port > 65535) {
    throw_errno(env, "bind", EINVAL);
    return NULL;
  }
  snprintf(service, sizeof service, "%d", (int)port);
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  rc = getaddrinfo(host, service, &hints, &res);
  if (rc != 0 || res == NULL) {
    throw_errno(env, "getaddrinfo", rc == EAI_SYSTEM ? errno : EINVAL);
    return NULL;
  }

  fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) failed = "socket";
  else if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) failed = "setsockopt(SO_REUSEADDR)";
  else if (res->ai_family == AF_INET6 && v6only >= 0 &&
           setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)
    failed = "setsockopt(IPV6_V6ONLY)";
  else if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) failed = "bind";
  else if (listen(fd, backlog) < 0) failed = "listen";

  err = errno;
  freeaddrinfo(res);
  if (failed != NULL) {
    if (fd >= 0) close(fd);
    throw_errno(env, failed, err);
    return NULL;
  }
  NAPI_CALL(env, napi_create_int32(env, fd, &result));
  return result;
}

/* listenUnix(path, backlog) -> fd. '@name' binds in the abstract namespace. An existing socket file is
 * not removed: that belongs to whoever created it (and systemd's own sockets must never be unlinked). */
static napi_value js_listen_unix(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  char path[STRING_ARG_MAX];
  size_t path_len;
  int32_t backlog;
  struct sockaddr_un sun;
  socklen_t sun_len;
  int fd, rc, err;
  const char *failed = NULL;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || arg_string(env, argv[0], "bind", path, sizeof path, &path_len) < 0 ||
      arg_int32(env, argv[1], "backlog", &backlog) < 0)
    return NULL;
  rc = fill_sockaddr_un(path, path_len, &sun, &sun_len);
  if (rc < 0) {
    throw_errno(env, "bind", -rc);
    return NULL;
  }
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) failed = "socket";
  else if (bind(fd, (struct sockaddr *)&sun, sun_len) < 0) failed = "bind";
  else if (listen(fd, backlog) < 0) failed = "listen";
  if (failed != NULL) {
    err = errno;
    if (fd >= 0) close(fd);
    throw_errno(env, failed, err);
    return NULL;
  }
  NAPI_CALL(env, napi_create_int32(env, fd, &result));
  return result;
}

/* ------------------------------------------------------------------------------------------------ */
/* Datagram sockets                                                                                  */

/*
 * Lifetime: the struct is shared by the JS wrapper object (napi_wrap) and, once receiving started, by the
 * uv_poll_t, whose memory must stay valid until its uv_close() callback. `owners` counts both; the last one
 * to let go frees it. While receiving, a strong reference to the wrapper keeps it from being collected
 * (like any active Node handle), so a finalizer only ever meets an idle socket, except at environment
 * teardown, where the cleanup hook has already stopped everything.
 */
typedef struct {
  napi_env env;
  int fd;                   /* -1 once closed */
  int owners;               /* wrapper + poll handle (until its close callback) */
  bool polling;             /* uv_poll_init done and uv_close not yet called */
  bool want_ref;            /* keep the loop alive while receiving */
  bool cleanup_hook;        /* env cleanup hook registered */
  bool in_callback;         /* onBatch is running (close() may be called from inside it) */
  bool release_pending;     /* close() ran inside onBatch: drop the references once it returns */
  napi_ref callback;        /* onBatch, while receiving */
  napi_ref self;            /* the wrapper, while receiving */
  napi_async_context actx;  /* for napi_make_callback (async_hooks, microtask draining) */
  uv_poll_t poll;
  uv_async_t resume;        /* the closer made room again (closer.c): poll again */
  bool resume_init;         /* uv_async_init done and uv_close not yet called */
  bool paused;              /* polling stopped until the closer has room for passed fds */
  closer_waiter_t waiter;
} dgram_t;

static void dgram_release(dgram_t *d) {
  if (--d->owners == 0) free(d);
}

static void on_poll_closed(uv_handle_t *handle) {
  dgram_release((dgram_t *)handle->data);
}

static void on_env_cleanup(void *arg);

/* The wake-up source keeps the loop alive only while it stands in for a paused, referenced poll. */
static void dgram_update_resume_ref(dgram_t *d) {
  if (!d->resume_init) return;
  if (d->paused && d->want_ref) uv_ref((uv_handle_t *)&d->resume);
  else uv_unref((uv_handle_t *)&d->resume);
}

/* Drop the callback, the strong wrapper reference and the async context taken by dgramStart. */
static void dgram_release_js(dgram_t *d) {
  if (d->callback != NULL) napi_delete_reference(d->env, d->callback);
  if (d->self != NULL) napi_delete_reference(d->env, d->self);
  if (d->actx != NULL) napi_async_destroy(d->env, d->actx);
  d->callback = NULL;
  d->self = NULL;
  d->actx = NULL;
  d->release_pending = false;
}

static void dgram_close_fd(int fd);

/* Stop receiving and close the fd. Idempotent. `js` says whether Node-API references may be released
 * here (false from the GC finalizer and the teardown hook, where the environment may be half gone). */
static void dgram_shutdown(dgram_t *d, bool js) {
  if (d->polling) {
    uv_poll_stop(&d->poll);
    uv_close((uv_handle_t *)&d->poll, on_poll_closed);
    d->polling = false;
  }
  if (d->resume_init) {
    closer_cancel(&d->waiter); /* after this the closer thread no longer touches d->resume */
    uv_close((uv_handle_t *)&d->resume, on_poll_closed);
    d->resume_init = false;
  }
  d->paused = false;
  if (d->fd >= 0) {
    dgram_close_fd(d->fd);
    d->fd = -1;
  }
  if (js) {
    /* The async context must outlive the napi_make_callback that may be running it right now. */
    if (d->in_callback) d->release_pending = true;
    else dgram_release_js(d);
  }
  if (d->cleanup_hook) {
    napi_remove_env_cleanup_hook(d->env, on_env_cleanup, d);
    d->cleanup_hook = false;
  }
}

/* Environment teardown (process exit, worker end): release the fd and the poll handle. */
static void on_env_cleanup(void *arg) {
  dgram_t *d = arg;
  d->cleanup_hook = false; /* being run now; Node drops it itself */
  dgram_shutdown(d, false);
}

static void dgram_finalize(napi_env env, void *data, void *hint) {
  dgram_t *d = data;
  dgram_shutdown(d, false);
  dgram_release(d);
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
  d->env = env;
  d->fd = fd;
  d->owners = 1;
  d->want_ref = true;
  d->poll.data = d;
  if (napi_create_object(env, &handle) != napi_ok ||
      napi_wrap(env, handle, d, dgram_finalize, NULL, NULL) != napi_ok) {
    close(fd);
    free(d);
    NAPI_CALL(env, napi_generic_failure);
  }
  if (napi_add_env_cleanup_hook(env, on_env_cleanup, d) == napi_ok) d->cleanup_hook = true;
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
  napi_env env = d->env;
  napi_handle_scope scope;
  napi_value batch, argv[2], callback, self, undefined;
  char buf[NOTIFY_MAX_BYTES + 1];
  uint32_t count = 0;
  int err = 0;
  const char *failed = NULL;

  if (d->callback == NULL || d->self == NULL || d->fd < 0) return;
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
  if (napi_get_reference_value(env, d->callback, &callback) != napi_ok ||
      napi_get_reference_value(env, d->self, &self) != napi_ok)
    goto out;
  d->in_callback = true;
  napi_status called = napi_make_callback(env, d->actx, self, callback, 2, argv, NULL);
  d->in_callback = false;
  if (d->release_pending) dgram_release_js(d);
  if (called == napi_pending_exception) {
    /* Nobody up the stack can catch it: report it as an uncaught exception, like Node's own handles do,
     * and leave no pending exception behind (it would make every later Node-API call fail). */
    napi_value exception;
    if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
  }
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
  napi_value argv[2], name;
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
  if (d->callback != NULL || d->polling) {
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
  d->owners++;
  if (!d->want_ref) uv_unref((uv_handle_t *)&d->poll);
  rc = uv_async_init(loop, &d->resume, on_resume);
  if (rc < 0) {
    dgram_shutdown(d, true);
    throw_errno(env, "uv_async_init", -rc);
    return NULL;
  }
  d->resume.data = d;
  d->resume_init = true;
  d->owners++;
  d->waiter.wake = dgram_wake;
  dgram_update_resume_ref(d);

  if (napi_create_reference(env, argv[1], 1, &d->callback) != napi_ok ||
      napi_create_reference(env, argv[0], 1, &d->self) != napi_ok ||
      napi_create_string_utf8(env, "PodsockDgramSocket", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, argv[0], name, &d->actx) != napi_ok) {
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

/* ------------------------------------------------------------------------------------------------ */
/* Relay: the proxy's data path                                                                      */

/*
 * relay(fdA, fdB, initialAtoB, aEnded, initialBtoA, bEnded, spliceAfter, onDone) -> handle
 *
 * Moves bytes between two connected stream sockets in both directions without calling into JS per
 * chunk. The design follows systemd-socket-proxyd (src/socket-proxy/socket-proxyd.c, connection_shovel
 * and connection_enable_event_sources): per direction a bounded buffer, read from one fd and written to
 * the other, and poll interest recomputed from the state after every round:
 * - an fd is watched for READABLE while a direction reading from it has nothing pending (so reading
 *   stops while the other side is not writable: TCP flow control pushes back on the sender), and for
 *   WRITABLE while a direction writing to it has bytes pending;
 * - EOF (read returns 0) becomes shutdown(SHUT_WR) on the other fd once everything read was written,
 *   and the other direction keeps flowing (half-close, which systemd's socket-proxyd.c does not do);
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
 * Ownership: the relay owns both fds from the call on (it closes them even when it throws). The returned
 * handle may be dropped at any time; the relay keeps running (and keeps the event loop alive) until both
 * directions ended, an error occurred or relayAbort(handle) was called. onDone(null | Error) is called
 * exactly once, from a later event-loop iteration, after both fds are closed; the Error carries `code`
 * (the errno name), `errno` and `syscall`. An abort reports null: the connection was cut from outside.
 */

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
  napi_env env;
  int fd[2];
  uv_poll_t poll[2];
  bool poll_init[2];
  int interest[2];          /* events the poll is started with, 0 when stopped */
  bool rdhup[2];            /* the peer of fd[i] has sent its FIN (EPOLLRDHUP): read on to the EOF */
  relay_dir_t dir[2];       /* dir[0]: A to B, dir[1]: B to A */
  uint32_t slot;            /* in relay_table: the handle JS holds is this slot and its generation */
  int closing;              /* poll handles whose close callback is pending */
  bool finished;            /* fds closed, polls closing */
  bool env_gone;            /* environment teardown: never call into JS again */
  bool cleanup_hook;
  int err;                  /* errno of the first failure, 0 for none */
  const char *err_syscall;
  napi_ref callback;        /* onDone, until called */
  napi_async_context actx;
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
static void relay_touch(relay_t *r) {
  r->active_at = uv_now(r->loop);
}

static size_t relay_pending(const relay_dir_t *d) {
  if (d->splicing) return d->in_pipe;
  return (d->ubid >= 0 ? d->ulen - d->uoff : 0) + (d->tail - d->head);
}

/*
 * The copy path reads into one buffer shared by every relay of the thread (Node's loop thread; a worker
 * has its own): a request or reply that the other side takes at once never needs memory of its own, so a
 * connection costs no 2 x 64 KiB of fresh pages (page faults, zeroing) and a thousand idle keep-alive
 * connections hold no buffers. Bytes the other side did not take are moved into a buffer of the direction.
 */
static _Thread_local char relay_scratch[RELAY_BUFFER_BYTES];

/* If a direction's pending bytes sit in the scratch buffer, give them a buffer of its own. 0 or -1 (ENOMEM). */
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
    return -1;
  }
  memcpy(own, relay_scratch + d->head, pending);
  d->buf = own;
  d->cap = RELAY_BUFFER_BYTES;
  d->head = 0;
  d->tail = pending;
  return 0;
}

static void relay_dir_free(relay_dir_t *d) {
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
 * shutdown() would be one syscall per connection for nothing. 0, or -1 with errno set.
 */
static int relay_pass_eof(relay_t *r, relay_dir_t *d) {
  if (!r->dir[d == &r->dir[0] ? 1 : 0].shut && shutdown(r->fd[d->to], SHUT_WR) < 0) return -1;
  d->shut = true;
  relay_dir_free(d);
  return 0;
}

/*
 * Handles. JS gets a relay as a number (slot | generation << RELAY_SLOT_BITS), not as a wrapped object:
 * a wrapped object's memory is only released by its finalizer, i.e. at the next garbage collection,
 * which under thousands of new connections a second let the freed relays' memory pile up by tens of
 * MiB. A relay is freed as soon as its last handle closed; a handle kept afterwards finds its slot's
 * generation changed and is a finished relay. The table belongs to the thread (Node's loop thread; a
 * worker has its own) and is released whenever no relay is live.
 */
#define RELAY_SLOT_BITS 20
#define RELAY_SLOTS_MAX (1u << RELAY_SLOT_BITS)
#define RELAY_GEN_MASK 0x7ffu /* 11 bits: the handle stays a positive int32 */

typedef struct {
  relay_t **slots;
  uint16_t *gens;
  uint32_t *free_slots;
  uint32_t cap, top, nfree, live;
} relay_table_t;

static _Thread_local relay_table_t relay_table;

/* Give r a slot; returns its handle, or -1 (ENOMEM, or a million relays already). */
static int32_t relay_register(relay_t *r) {
  relay_table_t *t = &relay_table;
  uint32_t slot;
  if (t->nfree > 0) {
    slot = t->free_slots[--t->nfree];
  } else {
    if (t->top == t->cap) {
      uint32_t cap = t->cap == 0 ? 256 : t->cap * 2;
      if (cap > RELAY_SLOTS_MAX) return -1;
      relay_t **slots = realloc(t->slots, cap * sizeof *slots);
      if (slots == NULL) return -1;
      t->slots = slots;
      uint16_t *gens = realloc(t->gens, cap * sizeof *gens);
      if (gens == NULL) return -1;
      t->gens = gens;
      uint32_t *free_slots = realloc(t->free_slots, cap * sizeof *free_slots);
      if (free_slots == NULL) return -1;
      t->free_slots = free_slots;
      memset(t->gens + t->cap, 0, (cap - t->cap) * sizeof *gens);
      t->cap = cap;
    }
    slot = t->top++;
  }
  t->slots[slot] = r;
  t->live++;
  r->slot = slot;
  return (int32_t)(((uint32_t)t->gens[slot] << RELAY_SLOT_BITS) | slot);
}

static void relay_unregister(relay_t *r) {
  relay_table_t *t = &relay_table;
  t->slots[r->slot] = NULL;
  t->gens[r->slot] = (uint16_t)((t->gens[r->slot] + 1) & RELAY_GEN_MASK);
  t->free_slots[t->nfree++] = r->slot;
  if (--t->live == 0) {
    free(t->slots);
    free(t->gens);
    free(t->free_slots);
    memset(t, 0, sizeof *t);
  }
}

/* The relay behind a handle, or NULL for a finished one (or a number that never was a handle). */
static relay_t *relay_lookup(int32_t handle) {
  relay_table_t *t = &relay_table;
  if (handle < 0) return NULL;
  uint32_t slot = (uint32_t)handle & (RELAY_SLOTS_MAX - 1);
  uint32_t gen = (uint32_t)handle >> RELAY_SLOT_BITS;
  if (slot >= t->top || t->gens[slot] != gen) return NULL;
  return t->slots[slot];
}

/* The engine is done with r (every handle closed, onDone called): free it. */
static void relay_release(relay_t *r) {
  relay_unregister(r);
  free(r);
}

static void relay_on_env_cleanup(void *arg);

/* What a relay callback reports: its second argument. relay() only ever reports RELAY_DONE. */
#define RELAY_CONNECTED 0      /* relayConnect: the backend accepted; the relay owns the client fd now */
#define RELAY_DONE 1           /* both fds are closed; the first argument is null or the first error */
#define RELAY_CONNECT_FAILED 2 /* relayConnect: the connect failed; the client fd is the caller's again */

/* Call the callback with (err, kind). A pending exception becomes an uncaught exception, like Node's own
 * handles do it, so that no exception is left pending for the next Node-API call. */
static void relay_call(relay_t *r, int kind) {
  napi_env env = r->env;
  napi_handle_scope scope;
  napi_value callback, recv, argv[2];
  if (r->callback == NULL || r->env_gone || r->silent) return;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  argv[0] = NULL;
  if (kind != RELAY_CONNECTED && r->err != 0) argv[0] = errno_error(env, r->err_syscall, r->err);
  if (argv[0] == NULL) napi_get_null(env, &argv[0]);
  /* napi_make_callback needs an object receiver (node::MakeCallback takes a v8::Object). */
  if (napi_create_int32(env, kind, &argv[1]) == napi_ok &&
      napi_get_reference_value(env, r->callback, &callback) == napi_ok && callback != NULL &&
      napi_get_global(env, &recv) == napi_ok) {
    napi_status called = napi_make_callback(env, r->actx, recv, callback, 2, argv, NULL);
    if (called == napi_pending_exception) {
      napi_value exception;
      if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
    }
  }
  napi_close_handle_scope(env, scope);
}

/* Call onDone once (not during environment teardown, not after a cancel), then drop the JS references. */
static void relay_call_done(relay_t *r) {
  napi_env env = r->env;
  if (r->callback == NULL) return;
  relay_call(r, r->connect_failed ? RELAY_CONNECT_FAILED : RELAY_DONE);
  if (!r->env_gone) {
    napi_delete_reference(env, r->callback);
    if (r->actx != NULL) napi_async_destroy(env, r->actx);
  }
  r->callback = NULL;
  r->actx = NULL;
}

static void ring_relay_released(void);
static void ring_finish(relay_t *r);
static void ring_forget(relay_t *r);
static bool ring_is_open(void);

/* Close the fds that are still open, abortively (SO_LINGER {1, 0}: close() sends a TCP reset, socket(7))
 * when relay_finish said so. */
static void relay_close_fds(relay_t *r) {
  for (int i = 0; i < 2; i++) {
    if (r->fd[i] < 0) continue;
    if (r->abortive) {
      struct linger lg = {.l_onoff = 1, .l_linger = 0};
      setsockopt(r->fd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(r->fd[i]);
    r->fd[i] = -1;
  }
}

/* A finished relay whose last poll or timer closed and whose last io_uring operation completed: close its
 * fds (on the ring they are closed only now, see relay_finish), call onDone and free it. Buffers are freed
 * only here: an operation in flight may still point into them. Not while a caller further up the stack
 * still works on r (r->holds): that caller calls this again when it is done. */
static void relay_maybe_release(relay_t *r) {
  if (!r->finished || r->closing > 0 || r->inflight > 0 || r->holds > 0) return;
  r->holds++; /* onDone and a buffer given back can call into JS, which must not release r twice */
  relay_close_fds(r);
  if (r->uring) ring_forget(r);
  relay_dir_free(&r->dir[0]);
  relay_dir_free(&r->dir[1]);
  relay_call_done(r);
  if (r->uring) ring_relay_released();
  relay_release(r);
}

static void relay_on_poll_closed(uv_handle_t *handle) {
  relay_t *r = handle->data;
  r->closing--;
  relay_maybe_release(r);
}

/*
 * Close everything. `abortive`: SO_LINGER {1, 0} first, so that close() sends a TCP reset (socket(7));
 * on a unix socket the option is accepted and the peer sees ECONNRESET only if data was unread. The
 * poll handles are closed; the last close callback calls onDone and frees the relay.
 *
 * On the io_uring engine the fds stay open until the last operation completed (relay_maybe_release):
 * io_uring resolves an operation's fd number only when it submits it (io_uring/io_uring.c
 * io_assign_file), so an operation still queued when its fd was closed would go to whatever reused the
 * number, e.g. the socket of the next connection, opened from an onDone called in the same batch of
 * completions. ring_finish cancels what is in flight, so the wait is short.
 */
static void relay_finish(relay_t *r, int err, const char *syscall, bool abortive) {
  if (r->finished) return;
  r->finished = true;
  if (err != 0 && r->err == 0) {
    r->err = err;
    r->err_syscall = syscall;
  }
  /* Polls first: uv_close() takes the fds out of the loop's epoll set, which must happen while they are
   * still open (and before their numbers can be reused). */
  for (int i = 0; i < 2; i++) {
    if (!r->poll_init[i]) continue;
    r->poll_init[i] = false;
    r->closing++;
    uv_close((uv_handle_t *)&r->poll[i], relay_on_poll_closed);
  }
  if (r->timer_init) {
    r->timer_init = false;
    r->closing++;
    uv_close((uv_handle_t *)&r->timer, relay_on_poll_closed);
  }
  r->abortive = abortive;
  if (!r->uring || !ring_is_open()) relay_close_fds(r);
  /* io_uring: the operations in flight hold the sockets and point into the buffers; they are cancelled
   * here, and onDone (and the close) waits for their completions. */
  if (r->uring) ring_finish(r);
  if (r->cleanup_hook) {
    if (!r->env_gone) napi_remove_env_cleanup_hook(r->env, relay_on_env_cleanup, r);
    r->cleanup_hook = false;
  }
  /* With nothing asynchronous left (a set-up error before any poll existed), this releases it now. */
  relay_maybe_release(r);
}

/* Environment teardown (process exit, worker end): release the fds and the polls, call no JS. */
static void relay_on_env_cleanup(void *arg) {
  relay_t *r = arg;
  r->cleanup_hook = false; /* being run now; Node drops it itself */
  r->env_gone = true;
  relay_finish(r, 0, NULL, true);
}

/* ------------------------------------------------------------------------------------------------ */
/* The relay's io_uring engine                                                                       */

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
 * EINVAL before 6.1) or relayEngine('poll') was called, relays use the poll engine above.
 */
static void relay_start_splice(relay_dir_t *d);
static int relay_shovel(relay_t *r, relay_dir_t *d, const char **syscall);

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

typedef struct {
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
} relay_ring_t;

static _Thread_local relay_ring_t relay_ring;

static bool ring_is_open(void) {
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
  /* Nothing completes any more: the relays that waited for their last completion close their fds now
   * (and are freed unless a handle's close callback is still due). */
  relay_table_t *t = &relay_table;
  for (uint32_t i = 0; i < t->top; i++) {
    relay_t *r = t->slots[i];
    if (r == NULL || !r->uring) continue;
    r->env_gone = true;
    r->inflight = 0;
    relay_close_fds(r);
    relay_maybe_release(r); /* may free the table with the last relay: then t->top is 0 */
  }
}

/* The thread's ring, set up on first use; NULL when relays poll instead (see relayEngine). */
static relay_ring_t *ring_get(napi_env env, uv_loop_t *loop) {
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

/* A relay will run on the ring / was released: the loop stays alive while any is live. */
static void ring_take(relay_t *r) {
  r->uring = true;
  r->dir[0].owner = r->dir[1].owner = r;
  if (relay_ring.live++ == 0) uv_ref((uv_handle_t *)&relay_ring.poll);
}

static void ring_relay_released(void) {
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
 * is still answering), so the kernel waits for readability before trying. 0 or EBUSY. */
static int ring_recv(relay_ring_t *g, relay_dir_t *d) {
  struct io_uring_sqe *sqe = ring_queue(g, d, UOP_RECV, IORING_OP_RECV, d->from);
  if (sqe == NULL) return EBUSY;
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
  if (sqe == NULL) return EBUSY;
  sqe->poll32_events = out ? POLLOUT : POLLIN | POLLRDHUP;
  return 0;
}

/* Queue a send. From a provided buffer it is one attempt (MSG_DONTWAIT: io_uring then completes it with
 * what went out, or -EAGAIN, instead of waiting for room, io_uring/net.c io_sendmsg_prep REQ_F_NOWAIT),
 * so that the buffer goes back to the pool at once; from the direction's own buffer the kernel retries a
 * partial send itself (MSG_WAITALL). */
static int ring_send(relay_ring_t *g, relay_dir_t *d, const char *data, size_t len, bool pooled) {
  struct io_uring_sqe *sqe = ring_queue(g, d, UOP_SEND, IORING_OP_SEND, d->to);
  if (sqe == NULL) return EBUSY;
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

/* Give a buffer back to the pool; the oldest direction waiting for one gets to receive again. */
static void ring_give_back(relay_ring_t *g, int bid) {
  uring_buf_return(&g->u, (unsigned)bid);
  g->lent--;
  relay_dir_t *d = g->wait_head;
  if (d == NULL) return;
  ring_unwait(g, d);
  int err = ring_recv(g, d);
  if (err != 0) relay_finish(d->owner, err, "io_uring_enter", true);
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
static void ring_forget(relay_t *r) {
  if (!relay_ring.open) return;
  for (int k = 0; k < 2; k++) {
    if (r->dir[k].ubid >= 0) ring_drop_buf(&relay_ring, &r->dir[k]);
  }
}

/*
 * A send from a provided buffer did not take everything (the receiver is slow or does not read): move the
 * rest into a buffer of the direction's own and give the provided one back, so that a connection whose
 * peer does not read holds at most URING_BUF_BYTES of its own and nothing of the pool every connection
 * shares. 0, or ENOMEM.
 */
static int ring_keep_rest(relay_ring_t *g, relay_dir_t *d) {
  size_t rest = d->ulen - d->uoff;
  if (d->buf == NULL) {
    d->buf = malloc(URING_BUF_BYTES);
    if (d->buf == NULL) return ENOMEM;
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
      relay_finish(r, err, syscall, true);
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
    if (relay_pass_eof(r, d) != 0) relay_finish(r, errno, "shutdown", true);
    else if (r->dir[0].shut && r->dir[1].shut) relay_finish(r, 0, NULL, false);
    return;
  } else {
    err = ring_recv(g, d);
  }
  if (err != 0) relay_finish(r, err, "io_uring_enter", true);
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
static void ring_finish(relay_t *r) {
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

/* Start a relay's data path on the ring: both directions take their first step. */
static void ring_start(relay_t *r) {
  relay_ring_t *g = &relay_ring;
  for (int k = 0; k < 2 && !r->finished; k++) ring_advance(g, r, &r->dir[k]);
  ring_flush(g);
}

#else /* built with kernel headers before Linux 6.1: relays always poll */

static relay_ring_t *ring_get(napi_env env, uv_loop_t *loop) {
  relay_ring.err = ENOSYS;
  relay_ring.what = "io_uring (built without Linux 6.1 headers)";
  return NULL;
}
static void ring_take(relay_t *r) {}
static void ring_relay_released(void) {}
static void ring_finish(relay_t *r) {}
static void ring_forget(relay_t *r) {}
static void ring_start(relay_t *r) {}

#endif

/* Switch a drained direction to splice(2). Failing to get a pipe (EMFILE...) just keeps copying. */
static void relay_start_splice(relay_dir_t *d) {
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

/*
 * Move what can be moved in one direction, at most RELAY_ROUNDS_MAX read/write rounds. Returns 0, or a
 * positive errno with *syscall set.
 */
static int relay_shovel(relay_t *r, relay_dir_t *d, const char **syscall) {
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
          } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            *syscall = "splice";
            return errno;
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
          } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            *syscall = "recv";
            return errno;
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
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          *syscall = "splice";
          return errno;
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
          return ENOMEM;
        }
        if (n < 0 && send_errno != EAGAIN && send_errno != EWOULDBLOCK && send_errno != EINTR) {
          *syscall = "send";
          return send_errno;
        }
      }
    }
    if (d->buf == relay_scratch && relay_keep_pending(d) != 0) {
      *syscall = "malloc";
      return ENOMEM;
    }

    if (d->eof && !d->shut && relay_pending(d) == 0 && relay_pass_eof(r, d) != 0) {
      *syscall = "shutdown";
      return errno;
    }
    if (!progress) break;
  }
  return 0;
}

static void relay_on_poll(uv_poll_t *handle, int status, int events);

/* Start, change or stop each fd's poll to match what the directions wait for. Returns 0 or a libuv error. */
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

/* Both directions, for relay_step. */
#define RELAY_BOTH 3

/* One step of the state machine: shovel the directions in `mask` (bit k: dir[k]), then finish or re-arm.
 * Only a direction whose source became readable or whose destination became writable can move. */
static void relay_step(relay_t *r, int mask) {
  const char *syscall = NULL;
  int err = 0;
  for (int k = 0; k < 2 && err == 0; k++) {
    if ((mask & (1 << k)) && !r->dir[k].shut) err = relay_shovel(r, &r->dir[k], &syscall);
  }
  if (err != 0) {
    relay_finish(r, err, syscall, true);
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

/* The relay behind the handle argument: 0 with *r set (NULL for a finished relay), or -1 (thrown). */
static int arg_relay(napi_env env, napi_value v, relay_t **r) {
  int32_t handle;
  if (arg_int32(env, v, "relay handle", &handle) < 0) return -1;
  *r = relay_lookup(handle);
  return 0;
}

/* Optional Buffer argument (null/undefined: none). Returns 0, or -1 with an exception pending. */
static int arg_optional_buffer(napi_env env, napi_value v, void **data, size_t *len) {
  napi_valuetype t;
  bool is_buffer = false;
  *data = NULL;
  *len = 0;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_null || t == napi_undefined) return 0;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, v, data, len) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: initial bytes must be a Buffer or null");
    return -1;
  }
  return 0;
}

/* Seed a direction with bytes read before the relay took over; they go out before anything else. */
static int relay_dir_init(relay_dir_t *d, int from, int to, const void *initial, size_t len, bool ended,
                          int splice_after) {
  memset(d, 0, sizeof *d);
  d->ubid = -1;
  d->from = from;
  d->to = to;
  d->eof = ended;
  d->splice_after = splice_after;
  d->pipe[0] = d->pipe[1] = -1;
  if (len > 0) {
    d->cap = len > RELAY_BUFFER_BYTES ? len : RELAY_BUFFER_BYTES;
    d->buf = malloc(d->cap);
    if (d->buf == NULL) return ENOMEM;
    memcpy(d->buf, initial, len);
    d->tail = len;
  }
  return 0;
}

static napi_value js_relay(napi_env env, napi_callback_info info) {
  size_t argc = 8;
  napi_value argv[8], handle, name;
  napi_valuetype t;
  int32_t fds[2] = {-1, -1}, splice_after;
  void *initial[2];
  size_t initial_len[2];
  bool ended[2];
  uv_loop_t *loop;
  relay_t *r;
  int err = 0;
  const char *failed = NULL;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 8 || arg_int32(env, argv[0], "fdA", &fds[0]) < 0 || arg_int32(env, argv[1], "fdB", &fds[1]) < 0)
    return NULL;
  if (arg_optional_buffer(env, argv[2], &initial[0], &initial_len[0]) < 0 ||
      napi_get_value_bool(env, argv[3], &ended[0]) != napi_ok ||
      arg_optional_buffer(env, argv[4], &initial[1], &initial_len[1]) < 0 ||
      napi_get_value_bool(env, argv[5], &ended[1]) != napi_ok ||
      arg_int32(env, argv[6], "spliceAfter", &splice_after) < 0 || napi_typeof(env, argv[7], &t) != napi_ok ||
      t != napi_function) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_type_error(env, "EINVAL", "podsock_native: relay(fdA, fdB, bufA, endedA, bufB, endedB, spliceAfter, onDone)");
    return NULL;
  }
  if (fds[0] < 0 || fds[1] < 0 || fds[0] == fds[1]) {
    throw_errno(env, "relay", EBADF);
    return NULL;
  }

  r = calloc(1, sizeof *r);
  if (r == NULL) {
    close(fds[0]);
    close(fds[1]);
    throw_errno(env, "calloc", ENOMEM);
    return NULL;
  }
  r->env = env;
  r->fd[0] = fds[0];
  r->fd[1] = fds[1];
  r->dir[0].pipe[0] = r->dir[0].pipe[1] = r->dir[1].pipe[0] = r->dir[1].pipe[1] = -1;
  int32_t id = relay_register(r);
  if (id < 0) {
    close(fds[0]);
    close(fds[1]);
    free(r);
    throw_errno(env, "relay", ENOMEM);
    return NULL;
  }

  /* From here on every failure goes through relay_finish, which closes the fds. */
  for (int i = 0; i < 2 && failed == NULL; i++) {
    int flags = fcntl(r->fd[i], F_GETFL);
    if (flags < 0 || fcntl(r->fd[i], F_SETFL, flags | O_NONBLOCK) < 0) {
      err = errno;
      failed = "fcntl(O_NONBLOCK)";
    }
  }
  if (failed == NULL && ((err = relay_dir_init(&r->dir[0], 0, 1, initial[0], initial_len[0], ended[0], splice_after)) != 0 ||
                         (err = relay_dir_init(&r->dir[1], 1, 0, initial[1], initial_len[1], ended[1], splice_after)) != 0))
    failed = "malloc";
  if (failed == NULL && napi_get_uv_event_loop(env, &loop) != napi_ok) {
    err = EINVAL;
    failed = "napi_get_uv_event_loop";
  }
  if (failed == NULL) {
    r->loop = loop;
    relay_touch(r);
  }
  if (failed == NULL && ring_get(env, loop) != NULL) ring_take(r);
  for (int i = 0; i < 2 && failed == NULL && !r->uring; i++) {
    int rc = uv_poll_init(loop, &r->poll[i], r->fd[i]);
    if (rc < 0) {
      err = -rc;
      failed = "uv_poll_init";
      break;
    }
    r->poll[i].data = r;
    r->poll_init[i] = true;
  }
  if (failed == NULL &&
      (napi_create_int32(env, id, &handle) != napi_ok || napi_create_reference(env, argv[7], 1, &r->callback) != napi_ok ||
       napi_create_string_utf8(env, "PodsockRelay", NAPI_AUTO_LENGTH, &name) != napi_ok ||
       napi_async_init(env, NULL, name, &r->actx) != napi_ok)) {
    err = ENOMEM;
    failed = "napi_async_init";
  }
  if (failed != NULL) {
    /* Call nothing: the caller gets the exception instead. */
    if (r->callback != NULL) napi_delete_reference(env, r->callback);
    if (r->actx != NULL) napi_async_destroy(env, r->actx);
    r->callback = NULL;
    r->actx = NULL;
    r->env_gone = true;
    relay_finish(r, err, failed, true);
    throw_errno(env, failed, err);
    return NULL;
  }
  if (napi_add_env_cleanup_hook(env, relay_on_env_cleanup, r) == napi_ok) r->cleanup_hook = true;
  /* First round now: initial bytes go out and a pre-ended side is passed on without waiting a loop turn. */
  if (r->uring) ring_start(r);
  else relay_step(r, RELAY_BOTH);
  return handle;
}

/*
 * relayConnect(clientFd, address, port, timeoutMs, initial, ended, spliceAfter, onEvent[, netnsFd]) -> handle
 *
 * The proxy's per-connection fast path in one call: connect a new non-blocking socket to the backend
 * (`address` a numeric IPv4/IPv6 host and `port`, or, with port -1, a unix path or '@abstract' name),
 * wait for writability with a uv_poll, check SO_ERROR (connect(2), EINPROGRESS), then relay between
 * clientFd and it exactly as relay() does, `initial` and `ended` describing what was read from the client
 * before. No Node socket, promise or timer exists for the backend connection: this is what makes a new
 * connection per request cheap (it used to be a net.Socket, an AbortController and a timer each).
 * netnsFd (an open /proc/PID/ns/net, -1 or absent for none) creates the backend socket inside that network
 * namespace (netns.c), e.g. to reach a container's loopback.
 *
 * onEvent(err, kind) is called from later event-loop iterations, except RELAY_CONNECTED for a connect
 * that completed at once, which is reported before relayConnect returns:
 * - kind RELAY_CONNECTED (0), at most once: connected; the relay owns clientFd from now on;
 * - kind RELAY_CONNECT_FAILED (2): socket(), connect() or the deadline failed (err.code 'ECONNREFUSED',
 *   'ETIMEDOUT', 'EAGAIN' for a unix backlog that is full...); the backend socket is closed and clientFd
 *   is the caller's again, untouched, so it can retry or close it;
 * - kind RELAY_DONE (1), after RELAY_CONNECTED: as relay()'s onDone.
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
 * 'fe80::1%eth0', with AI_NUMERICHOST so it never does a lookup). Returns 0 or a positive errno. */
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
  if (getaddrinfo(host, service, &hints, &res) != 0 || res == NULL) return EINVAL;
  if (res->ai_addrlen > sizeof *ss) {
    freeaddrinfo(res);
    return EINVAL;
  }
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

static napi_value js_relay_connect(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9], handle, name;
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
    err = -fill_sockaddr_un(address, address_len, (struct sockaddr_un *)&ss, &ss_len);
  } else {
    err = fill_sockaddr_in(address, port, &ss, &ss_len);
  }
  if (err != 0) {
    throw_errno(env, "connect", err);
    return NULL;
  }
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));

  r = calloc(1, sizeof *r);
  if (r == NULL) {
    throw_errno(env, "calloc", ENOMEM);
    return NULL;
  }
  r->env = env;
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
  if (napi_create_int32(env, id, &handle) != napi_ok || napi_create_reference(env, argv[7], 1, &r->callback) != napi_ok ||
      napi_create_string_utf8(env, "PodsockRelay", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &r->actx) != napi_ok) {
    if (r->callback != NULL) napi_delete_reference(env, r->callback);
    if (r->actx != NULL) napi_async_destroy(env, r->actx);
    r->callback = NULL;
    r->actx = NULL;
    r->env_gone = true;
    r->fd[0] = -1;
    relay_finish(r, ENOMEM, "napi_async_init", false);
    throw_errno(env, "napi_async_init", ENOMEM);
    return NULL;
  }
  if (napi_add_env_cleanup_hook(env, relay_on_env_cleanup, r) == napi_ok) r->cleanup_hook = true;
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

/* resetFd(fd): close a stream socket abortively (SO_LINGER {1, 0}: a TCP reset, socket(7)), so that a
 * client the proxy gives up on sees ECONNRESET rather than an EOF that could pass for a complete reply. */
static napi_value js_reset_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int32(env, argv[0], "fd", &fd) < 0) return NULL;
  /* ENOTSOCK/EOPNOTSUPP: not a socket, a plain close is all there is. */
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  if (close(fd) < 0 && errno != EINTR) throw_errno(env, "close", errno);
  return NULL;
}

/* relayAbort(handle): reset both connections now (onDone(null) follows). Idempotent. */
static napi_value js_relay_abort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  relay_t *r;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_relay(env, argv[0], &r) < 0) return NULL;
  if (r != NULL) relay_finish(r, 0, NULL, true);
  return NULL;
}

/* relayInfo(handle) -> { active, buffered, splicing, engine, idleMs }: whether the relay still runs, the
 * bytes it holds, whether a direction splices, its engine ('poll' for a finished one), and the
 * milliseconds since it started relaying or last moved bytes, saw an EOF or an error (by the loop's
 * clock, uv_now; 0 for a finished one). */
static napi_value js_relay_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, v;
  relay_t *r;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_relay(env, argv[0], &r) < 0) return NULL;
  bool active = r != NULL && !r->finished;
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_get_boolean(env, active, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "active", v));
  NAPI_CALL(env, napi_create_double(env, active ? (double)(relay_pending(&r->dir[0]) + relay_pending(&r->dir[1])) : 0, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "buffered", v));
  NAPI_CALL(env, napi_get_boolean(env, active && (r->dir[0].splicing || r->dir[1].splicing), &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "splicing", v));
  NAPI_CALL(env, napi_create_string_utf8(env, r != NULL && r->uring ? "io_uring" : "poll", NAPI_AUTO_LENGTH, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "engine", v));
  uint64_t idle = active && !r->connecting ? uv_now(r->loop) - r->active_at : 0;
  NAPI_CALL(env, napi_create_double(env, (double)idle, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "idleMs", v));
  return result;
}

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

/* ------------------------------------------------------------------------------------------------ */
/* Acceptor: the proxy's accept loop                                                                 */

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
  napi_env env;
  int fd;                   /* -1 once closed */
  bool tcp;                 /* AF_INET/AF_INET6: set TCP_NODELAY on accepted sockets */
  int owners;               /* the JS wrapper + each libuv handle until its close callback */
  bool poll_init, timer_init;
  bool in_callback;         /* onAccept is running (acceptStop may be called from it) */
  bool release_pending;     /* acceptStop ran inside onAccept: drop the references once it returns */
  bool cleanup_hook;
  napi_ref callback;        /* onAccept, while accepting */
  napi_ref self;            /* the wrapper, while accepting: an active acceptor is never collected */
  napi_async_context actx;
  uv_poll_t poll;
  uv_timer_t timer;         /* resumes accepting after an error */
} acceptor_t;

static void acceptor_release(acceptor_t *a) {
  if (--a->owners == 0) free(a);
}

static void acceptor_on_closed(uv_handle_t *handle) {
  acceptor_release((acceptor_t *)handle->data);
}

static void acceptor_on_env_cleanup(void *arg);

static void acceptor_release_js(acceptor_t *a) {
  if (a->callback != NULL) napi_delete_reference(a->env, a->callback);
  if (a->self != NULL) napi_delete_reference(a->env, a->self);
  if (a->actx != NULL) napi_async_destroy(a->env, a->actx);
  a->callback = NULL;
  a->self = NULL;
  a->actx = NULL;
  a->release_pending = false;
}

/* Stop accepting and close the fd. Idempotent. `js`: Node-API references may be released here. */
static void acceptor_shutdown(acceptor_t *a, bool js) {
  if (a->poll_init) {
    a->poll_init = false;
    uv_close((uv_handle_t *)&a->poll, acceptor_on_closed);
  }
  if (a->timer_init) {
    a->timer_init = false;
    uv_close((uv_handle_t *)&a->timer, acceptor_on_closed);
  }
  if (a->fd >= 0) {
    close(a->fd);
    a->fd = -1;
  }
  if (js) {
    if (a->in_callback) a->release_pending = true;
    else acceptor_release_js(a);
  }
  if (a->cleanup_hook) {
    napi_remove_env_cleanup_hook(a->env, acceptor_on_env_cleanup, a);
    a->cleanup_hook = false;
  }
}

static void acceptor_on_env_cleanup(void *arg) {
  acceptor_t *a = arg;
  a->cleanup_hook = false;
  acceptor_shutdown(a, false);
}

static void acceptor_finalize(napi_env env, void *data, void *hint) {
  acceptor_t *a = data;
  acceptor_shutdown(a, false);
  acceptor_release(a);
}

/* onAccept(fd, err). Returns false when accepting must not go on (stopped, or the callback failed). */
static bool acceptor_call(acceptor_t *a, int fd, int err) {
  napi_env env = a->env;
  napi_handle_scope scope;
  napi_value argv[2], callback, self;
  bool ok = false;
  if (a->callback == NULL || a->self == NULL) return false;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return false;
  if (napi_create_int32(env, fd, &argv[0]) != napi_ok) goto out;
  argv[1] = err != 0 ? errno_error(env, "accept4", err) : NULL;
  if (argv[1] == NULL && napi_get_undefined(env, &argv[1]) != napi_ok) goto out;
  if (napi_get_reference_value(env, a->callback, &callback) != napi_ok ||
      napi_get_reference_value(env, a->self, &self) != napi_ok)
    goto out;
  a->in_callback = true;
  napi_status called = napi_make_callback(env, a->actx, self, callback, 2, argv, NULL);
  a->in_callback = false;
  if (a->release_pending) acceptor_release_js(a);
  if (called == napi_pending_exception) {
    napi_value exception;
    if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
  }
  ok = called == napi_ok;
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
  napi_value argv[3], handle, name;
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
  a->env = env;
  a->fd = -1;
  a->tcp = domain == AF_INET || domain == AF_INET6;
  a->owners = 1;
  a->poll.data = a;
  a->timer.data = a;
  if (napi_create_object(env, &handle) != napi_ok || napi_wrap(env, handle, a, acceptor_finalize, NULL, NULL) != napi_ok) {
    free(a);
    NAPI_CALL(env, napi_generic_failure);
  }
  if (napi_create_reference(env, argv[2], 1, &a->callback) != napi_ok ||
      napi_create_reference(env, handle, 1, &a->self) != napi_ok ||
      napi_create_string_utf8(env, "PodsockAcceptor", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, handle, name, &a->actx) != napi_ok) {
    acceptor_release_js(a);
    NAPI_CALL(env, napi_generic_failure);
  }
  rc = uv_poll_init(loop, &a->poll, fd);
  if (rc < 0) {
    acceptor_release_js(a);
    throw_errno(env, "uv_poll_init", -rc);
    return NULL;
  }
  a->fd = fd;
  a->poll_init = true;
  a->owners++;
  uv_timer_init(loop, &a->timer);
  a->timer_init = true;
  a->owners++;
  if (napi_add_env_cleanup_hook(env, acceptor_on_env_cleanup, a) == napi_ok) a->cleanup_hook = true;
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

/* ------------------------------------------------------------------------------------------------ */

NAPI_MODULE_INIT() {
  napi_property_descriptor props[] = {
      {"dupFd", NULL, js_dup_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, js_close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setCloexec", NULL, js_set_cloexec, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inspectFd", NULL, js_inspect_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenTcp", NULL, js_listen_tcp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenUnix", NULL, js_listen_unix, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dgramOpen", NULL, js_dgram_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dgramSend", NULL, js_dgram_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dgramStart", NULL, js_dgram_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dgramClose", NULL, js_dgram_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dgramSetRef", NULL, js_dgram_set_ref, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dgramFd", NULL, js_dgram_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relay", NULL, js_relay, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayAbort", NULL, js_relay_abort, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayInfo", NULL, js_relay_info, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayConnect", NULL, js_relay_connect, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayCancel", NULL, js_relay_cancel, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayEngine", NULL, js_relay_engine, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayTrim", NULL, js_relay_trim, NULL, NULL, NULL, napi_enumerable, NULL},
      {"resetFd", NULL, js_reset_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"acceptStart", NULL, js_accept_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"acceptStop", NULL, js_accept_stop, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  /* The interface version src/native/addon.ts checks at load: raise it when a function's arguments,
   * results or presence change. */
  napi_value abi;
  if (napi_create_int32(env, 1, &abi) != napi_ok || napi_set_named_property(env, exports, "abiVersion", abi) != napi_ok) return NULL;
  if (podsock_spawn_register(env, exports) != napi_ok) return NULL;
  if (podsock_memory_register(env, exports) != napi_ok) return NULL;
  if (podsock_closer_register(env, exports) != napi_ok) return NULL;
  if (podsock_sock_diag_register(env, exports) != napi_ok) return NULL;
  if (podsock_netns_register(env, exports) != napi_ok) return NULL;
  return exports;
}
