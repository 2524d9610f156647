/*
 * podsock_native: the few socket operations core Node cannot do. This file is the addon's core: the
 * error and argument helpers every file uses (internal.h) and the init that lets each file register its
 * own functions. One file per concern, as libuv's src/unix/:
 *
 * - fd.c: duplicating, closing, resetting and inspecting raw fds inherited through socket activation
 *   (sd_listen_fds(3)); listen.c: creating listening sockets without Node adopting them (adoption sets
 *   O_NONBLOCK on the shared open file description and shrinks the backlog to 511);
 * - dgram.c: unix datagram sockets (NOTIFY_SOCKET is SOCK_DGRAM, often abstract '@name'; Node's dgram
 *   module only knows udp4/udp6), receiving WITH the sender's credentials (SO_PASSCRED, unix(7));
 * - relay.c (core and JS entry points), relay-connect.c (its connect step), relay-poll.c (its poll
 *   engine and copy path), relay-uring.c (its io_uring engine, on uring.c): the proxy's data path;
 * - acceptor.c: the proxy's accept loop;
 * - udp-proxy.c, udp-proxy-io.c, udp-proxy-timer.c, udp-proxy-pktinfo.c (on udp-flows.c and proxy-v2.c):
 *   proxy mode's data path for UDP sockets;
 * - handle.c: the life cycle the datagram socket, the relay and the acceptor share;
 * - spawn.c, memory.c, closer.c, sock-diag.c, netns.c, record-lock.c: see their headers.
 *
 * Everything is synchronous and non-blocking except receiving, which watches the fd with a uv_poll_t on
 * Node's own loop: no thread pool, no thread blocked in recvmsg(2).
 *
 * Errors are thrown as JS Errors carrying `code` (the errno name, e.g. 'ENOENT'), `errno` and `syscall`;
 * the TypeScript wrapper turns them into PodsockError('PODSOCK_ERR_NATIVE'). Arguments are validated there
 * too; the checks here only keep a wrong call from crashing the process.
 */
#include "internal.h"
#include "closer.h"
#include "memory.h"
#include "sock-diag.h"
#include "netns.h"
#include "record-lock.h"
#include "spawn.h"
#include <uv.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------------ */
/* Errors                                                                                            */

/* Build an Error for errno `err` from `syscall`: message "syscall: ENAME (description)". */
napi_value errno_error(napi_env env, const char *syscall, int err) {
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

void throw_errno(napi_env env, const char *syscall, int err) {
  napi_value error = errno_error(env, syscall, err);
  if (error != NULL) napi_throw(env, error);
}

napi_value fd_or_throw(napi_env env, int fd, const char *syscall) {
  napi_value result;
  if (fd < 0) {
    throw_errno(env, syscall, -fd);
    return NULL;
  }
  if (napi_create_int32(env, fd, &result) != napi_ok) {
    close(fd); /* JS never gets the number, so nothing else could close it */
    napi_throw_error(env, "EINVAL", "podsock_native: Node-API call failed: napi_create_int32");
    return NULL;
  }
  return result;
}

/* ------------------------------------------------------------------------------------------------ */
/* Argument helpers                                                                                  */

int arg_int32(napi_env env, napi_value v, const char *what, int32_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_int32(env, v, out) != napi_ok) {
    char message[128];
    snprintf(message, sizeof message, "podsock_native: %s must be a number", what);
    napi_throw_type_error(env, "EINVAL", message);
    return -EINVAL;
  }
  return 0;
}

int arg_string(napi_env env, napi_value v, const char *syscall, char *buf, size_t cap, size_t *len) {
  napi_valuetype t;
  size_t full;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, v, NULL, 0, &full) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: expected a string");
    return -EINVAL;
  }
  if (full >= cap) {
    throw_errno(env, syscall, ENAMETOOLONG);
    return -ENAMETOOLONG;
  }
  if (napi_get_value_string_utf8(env, v, buf, cap, len) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: expected a string");
    return -EINVAL;
  }
  return 0;
}

/* unix(7): an abstract name is a leading NUL followed by the name; its length is given by addrlen, not by
 * a terminating NUL, which is why addrlen is computed exactly and nothing is padded. */
int fill_sockaddr_un(const char *addr, size_t len, struct sockaddr_un *sun, socklen_t *sun_len) {
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

NAPI_MODULE_INIT() {
  napi_value abi;
  if (napi_create_int32(env, PODSOCK_ABI_VERSION, &abi) != napi_ok ||
      napi_set_named_property(env, exports, "abiVersion", abi) != napi_ok)
    return NULL;
  if (podsock_fd_register(env, exports) != napi_ok) return NULL;
  if (podsock_listen_register(env, exports) != napi_ok) return NULL;
  if (podsock_dgram_register(env, exports) != napi_ok) return NULL;
  if (podsock_relay_register(env, exports) != napi_ok) return NULL;
  if (podsock_relay_connect_register(env, exports) != napi_ok) return NULL;
  if (podsock_relay_uring_register(env, exports) != napi_ok) return NULL;
  if (podsock_acceptor_register(env, exports) != napi_ok) return NULL;
  if (podsock_udp_proxy_register(env, exports) != napi_ok) return NULL;
  if (podsock_spawn_register(env, exports) != napi_ok) return NULL;
  if (podsock_memory_register(env, exports) != napi_ok) return NULL;
  if (podsock_closer_register(env, exports) != napi_ok) return NULL;
  if (podsock_sock_diag_register(env, exports) != napi_ok) return NULL;
  if (podsock_netns_register(env, exports) != napi_ok) return NULL;
  if (podsock_record_lock_register(env, exports) != napi_ok) return NULL;
  return exports;
}
