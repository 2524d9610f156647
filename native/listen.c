/*
 * Listening stream sockets (and bound UDP sockets) made without Node adopting them: adoption sets O_NONBLOCK on the shared open
 * file description and shrinks the backlog to 511 (libuv's uv_listen), which would change systemd's
 * socket for every other holder of it.
 */
#include "internal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/*
 * An IPv4/IPv6 socket of `socktype` bound to host:port (and listening with `backlog` when it is a stream
 * socket): the fd, or a negative errno with *failed naming the step. host is a numeric literal
 * (AI_NUMERICHOST: no name lookups, which would block). ipv6Only is 1, 0, or -1 to keep the kernel
 * default (net.ipv6.bindv6only). For TCP, SO_REUSEADDR lets a restarted service rebind while old
 * connections sit in TIME_WAIT (socket(7)). The fd is blocking and close-on-exec.
 */
static int bind_inet(const char *host, int port, int socktype, int v6only, int backlog, const char **failed) {
  char service[16];
  struct addrinfo hints, *res = NULL;
  int fd = -1, one = 1, rc, err = 0;

  snprintf(service, sizeof service, "%d", port);
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = socktype;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
  rc = getaddrinfo(host, service, &hints, &res);
  if (rc != 0 || res == NULL) {
    *failed = "getaddrinfo";
    return -(rc == EAI_SYSTEM ? errno : EINVAL);
  }
  fd = socket(res->ai_family, socktype | SOCK_CLOEXEC, 0);
  if (fd < 0) *failed = "socket";
  /* TCP only: for UDP, SO_REUSEADDR would let a second socket (another user's too) bind the same port
   * and take its datagrams (socket(7)). */
  else if (socktype == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) *failed = "setsockopt(SO_REUSEADDR)";
  else if (res->ai_family == AF_INET6 && v6only >= 0 &&
           setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) < 0)
    *failed = "setsockopt(IPV6_V6ONLY)";
  else if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) *failed = "bind";
  else if (socktype == SOCK_STREAM && listen(fd, backlog) < 0) *failed = "listen";
  else *failed = NULL;
  if (*failed != NULL) err = errno;
  freeaddrinfo(res);
  if (*failed != NULL) {
    if (fd >= 0) close(fd);
    return -err;
  }
  return fd;
}

/* listenTcp(host, port, backlog, ipv6Only) -> fd: a listening TCP socket (bind_inet). */
static napi_value js_listen_tcp(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  char host[STRING_ARG_MAX];
  size_t host_len;
  int32_t port, backlog, v6only;
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
  int fd = bind_inet(host, port, SOCK_STREAM, v6only, backlog, &failed);
  return fd_or_throw(env, fd, failed);
}

/* bindUdp(host, port, ipv6Only) -> fd: a bound UDP socket (bind_inet), as ListenDatagram= makes one. */
static napi_value js_bind_udp(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  char host[STRING_ARG_MAX];
  size_t host_len;
  int32_t port, v6only;
  const char *failed = NULL;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3 || arg_string(env, argv[0], "getaddrinfo", host, sizeof host, &host_len) < 0 ||
      arg_int32(env, argv[1], "port", &port) < 0 || arg_int32(env, argv[2], "ipv6Only", &v6only) < 0)
    return NULL;
  if (port < 0 || port > 65535) {
    throw_errno(env, "bind", EINVAL);
    return NULL;
  }
  int fd = bind_inet(host, port, SOCK_DGRAM, v6only, 0, &failed);
  return fd_or_throw(env, fd, failed);
}

/* listenUnix(path, backlog) -> fd. '@name' binds in the abstract namespace. An existing socket file is
 * not removed: that belongs to whoever created it (and systemd's own sockets must never be unlinked). */
static napi_value js_listen_unix(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
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
    fd = -err;
  }
  return fd_or_throw(env, fd, failed);
}

napi_status podsock_listen_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"listenTcp", NULL, js_listen_tcp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenUnix", NULL, js_listen_unix, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bindUdp", NULL, js_bind_udp, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
