/* Sockets inside a container's network namespace (netns.c): registered on the addon's exports by its init. */
#ifndef PODSOCK_NETNS_H
#define PODSOCK_NETNS_H
#include <node_api.h>

/* Adds netnsOpen and netnsSocket to `exports`. */
napi_status podsock_netns_register(napi_env env, napi_value exports);

/*
 * A non-blocking, close-on-exec socket(domain, type, 0) created inside the network namespace `nsfd`
 * (an open /proc/PID/ns/net); nsfd < 0 creates it in the calling thread's own namespace. Returns the fd
 * or a negative errno, with *syscall naming the step that failed ("setns" or "socket").
 */
int netns_socket(int nsfd, int domain, int type, const char **syscall);

#endif
