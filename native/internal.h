/*
 * What the addon's files share (as libuv's src/unix/internal.h): the error and argument helpers of the
 * core (podsock_native.c) and the register function of each file, which the core's init calls.
 *
 * One return convention: internal functions return 0 (or a count, an fd) on success and a negative errno
 * on failure. Functions that take Node-API arguments throw the JS error themselves and return a negative
 * errno as well, so that the caller only has to return NULL to JS.
 */
#ifndef PODSOCK_INTERNAL_H
#define PODSOCK_INTERNAL_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/* The addon's interface version, exported as `abiVersion`: the TypeScript side checks it at load, so a
 * build/ left over from another version of the package fails at once instead of at its first call.
 * Raise it whenever an export is added, removed or changes its arguments or results. */
#define PODSOCK_ABI_VERSION 3

/* Longest string argument accepted at all (addresses are far shorter; this only bounds the copy). */
#define STRING_ARG_MAX 1024

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

/* An Error for errno `err` (positive) from `syscall`: message "syscall: ENAME (description)", with `code`
 * (the errno's name), `errno` and `syscall`. NULL when it could not be made. */
napi_value errno_error(napi_env env, const char *syscall, int err);

/* Throw errno_error(env, syscall, err). */
void throw_errno(napi_env env, const char *syscall, int err);

/* The result of a call that makes an fd, to JS: `fd` (>= 0) as a number, or a negative errno thrown as
 * an error of `syscall` (then NULL). An fd that cannot be handed to JS is closed. */
napi_value fd_or_throw(napi_env env, int fd, const char *syscall);

/* Argument helpers: 0, or a negative errno with a JS exception thrown. */
int arg_int32(napi_env env, napi_value v, const char *what, int32_t *out);
/* Copy a JS string into buf (NUL-terminated); *len gets its UTF-8 length. Too long is ENAMETOOLONG,
 * thrown as an error of `syscall`. */
int arg_string(napi_env env, napi_value v, const char *syscall, char *buf, size_t cap, size_t *len);

/* Fill a sockaddr_un from "/path" or "@abstract" (unix(7)). 0 or a negative errno. */
int fill_sockaddr_un(const char *addr, size_t len, struct sockaddr_un *sun, socklen_t *sun_len);

/* Each file adds its functions to the addon's exports. */
napi_status podsock_fd_register(napi_env env, napi_value exports);
napi_status podsock_listen_register(napi_env env, napi_value exports);
napi_status podsock_dgram_register(napi_env env, napi_value exports);
napi_status podsock_relay_register(napi_env env, napi_value exports);
napi_status podsock_relay_connect_register(napi_env env, napi_value exports);
napi_status podsock_relay_uring_register(napi_env env, napi_value exports);
napi_status podsock_acceptor_register(napi_env env, napi_value exports);
napi_status podsock_udp_proxy_register(napi_env env, napi_value exports);

#endif
