/*
 * Raw fds: duplicating, closing, resetting and inspecting the fds podsock inherits through socket
 * activation (sd_listen_fds(3)) or takes from Node, without Node adopting them.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

/* dupFd(fd): fcntl(F_DUPFD_CLOEXEC, 3) so a copy never lands on 0-2 and is not inherited by accident. */
static napi_value js_dup_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int32(env, argv[0], "fd", &fd) < 0) return NULL;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  return fd_or_throw(env, copy < 0 ? -errno : copy, "fcntl(F_DUPFD_CLOEXEC)");
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

static napi_status set_string(napi_env env, napi_value obj, const char *key, const char *value, size_t len) {
  napi_value v;
  napi_status st = napi_create_string_utf8(env, value, len, &v);
  return st != napi_ok ? st : napi_set_named_property(env, obj, key, v);
}

/*
 * Set `host` and `port` (AF_INET, AF_INET6) or `path` (AF_UNIX) of `obj` from a socket address.
 * unix(7): unnamed sockets have addrlen == sizeof(sa_family_t) (path ''); abstract ones start with a
 * NUL and their name is exactly the remaining addrlen bytes (path '@name'); pathnames are
 * NUL-terminated (usually). Other families set nothing.
 */
static napi_status set_address(napi_env env, napi_value obj, const struct sockaddr_storage *ss, socklen_t sslen) {
  napi_value v;
  napi_status st;
  if (ss->ss_family == AF_INET || ss->ss_family == AF_INET6) {
    char host[INET6_ADDRSTRLEN];
    int port;
    if (ss->ss_family == AF_INET) {
      const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
      inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host);
      port = ntohs(sin->sin_port);
    } else {
      const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
      inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof host);
      port = ntohs(sin6->sin6_port);
    }
    if ((st = set_string(env, obj, "host", host, NAPI_AUTO_LENGTH)) != napi_ok) return st;
    if ((st = napi_create_int32(env, port, &v)) != napi_ok) return st;
    return napi_set_named_property(env, obj, "port", v);
  }
  if (ss->ss_family != AF_UNIX) return napi_ok;
  const struct sockaddr_un *sun = (const struct sockaddr_un *)ss;
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
  return set_string(env, obj, "path", path, len);
}

/*
 * peerAddress(fd) -> { host, port } | { path }: the address of a connected socket's peer
 * (getpeername(2)), in inspectFd's form; {} for a family other than inet, inet6 and unix. ENOTCONN
 * (a peer already gone, or not a connected socket) and ENOTSOCK are thrown.
 */
static napi_value js_peer_address(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd;
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof ss;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int32(env, argv[0], "fd", &fd) < 0) return NULL;
  memset(&ss, 0, sizeof ss);
  if (getpeername(fd, (struct sockaddr *)&ss, &sslen) < 0) {
    throw_errno(env, "getpeername", errno);
    return NULL;
  }
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, set_address(env, result, &ss, sslen));
  return result;
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
    NAPI_CALL(env, set_string(env, result, "family", "other", NAPI_AUTO_LENGTH));
    NAPI_CALL(env, set_string(env, result, "type", "other", NAPI_AUTO_LENGTH));
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
  NAPI_CALL(env, set_string(env, result, "family", family_s, NAPI_AUTO_LENGTH));
  NAPI_CALL(env, set_string(env, result, "type", type_s, NAPI_AUTO_LENGTH));
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
  NAPI_CALL(env, set_address(env, result, &ss, sslen));
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

napi_status podsock_fd_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"dupFd", NULL, js_dup_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, js_close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"inspectFd", NULL, js_inspect_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"peerAddress", NULL, js_peer_address, NULL, NULL, NULL, napi_enumerable, NULL},
      {"resetFd", NULL, js_reset_fd, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
