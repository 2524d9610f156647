/* Counting a unix listener's connections through sock_diag(7) netlink (sock-diag.c). */
#ifndef PODSOCK_SOCK_DIAG_H
#define PODSOCK_SOCK_DIAG_H
#include <node_api.h>

/* Adds unixConnections to `exports`. */
napi_status podsock_sock_diag_register(napi_env env, napi_value exports);

#endif
