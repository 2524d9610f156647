/*
 * Sockets created inside a container's network namespace, so that podsock reaches a rootful container's
 * app on the container's own loopback: no port published on the host, no address taken from the
 * container, and the same with `--network none`.
 *
 * A socket belongs to the network namespace of the thread that created it, for its whole life
 * (network_namespaces(7)), so connecting it later from Node's thread, non-blocking, works as for any
 * other socket. setns(2) with CLONE_NEWNET changes only the calling thread and, unlike CLONE_NEWUSER and
 * CLONE_NEWNS, is allowed in a multithreaded process; it needs CAP_SYS_ADMIN over both namespaces.
 * The thread switches in, creates the socket and switches back: measured on this project's test host
 * (Linux 6.18) about 1.3 us more than a plain socket(2), where a short-lived thread doing the same costs
 * about 50 us. The way back uses an fd of the thread's own namespace opened once; if that setns() ever
 * failed, the thread would stay in the container's namespace (every later socket, and every child, would
 * be created there), so the process aborts instead.
 *
 * netnsOpen() opens /proc/PID as a directory first and reads both the parent pid and ns/net through that
 * fd: if PID exits and the number is reused in between, the lookups through the old directory fail
 * (ESRCH/ENOENT) instead of describing another process. Which parent is right is the caller's decision.
 */
#include "netns.h"
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* /proc/PID/status is a few KiB; PPid: is in its first lines (proc(5)). */
#define STATUS_READ_MAX 4096

/* This thread's own namespace, opened at the first switch (the thread Node calls us on never changes). */
static __thread int home_ns = -1;

int netns_socket(int nsfd, int domain, int type, const char **syscall) {
  int fd, err;
  *syscall = "socket";
  if (nsfd < 0) {
    fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
  }
  *syscall = "setns";
  if (home_ns < 0) {
    home_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home_ns < 0) return -errno;
  }
  if (setns(nsfd, CLONE_NEWNET) < 0) return -errno;
  *syscall = "socket";
  fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  err = fd < 0 ? errno : 0;
  if (setns(home_ns, CLONE_NEWNET) < 0) {
    fprintf(stderr, "podsock_native: cannot return to podsock's own network namespace: %s\n", strerror(errno));
    abort();
  }
  return fd < 0 ? -err : fd;
}

/* The PPid: field of a /proc/PID/status text, or -1. */
static long status_ppid(const char *text) {
  const char *p = strstr(text, "\nPPid:");
  if (p == NULL) return -1;
  char *end;
  long v = strtol(p + 6, &end, 10);
  return end == p + 6 || v < 0 ? -1 : v;
}

/* Read /proc/PID/status through the directory fd `dir`: the parent pid or a negative errno. */
static long read_ppid(int dir) {
  char buf[STATUS_READ_MAX + 1];
  int fd = openat(dir, "status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n;
  do n = read(fd, buf, STATUS_READ_MAX);
  while (n < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (n < 0) return -err;
  buf[n] = '\0';
  long ppid = status_ppid(buf);
  return ppid < 0 ? -EINVAL : ppid;
}

/* netnsOpen(pid) -> { fd, ppid }: an fd of /proc/PID/ns/net and PID's parent, read through one /proc/PID fd. */
static napi_value js_netns_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, v;
  int32_t pid;
  char path[32];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &pid) != napi_ok || pid < 1) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: netnsOpen(pid) takes a positive pid");
    return NULL;
  }
  snprintf(path, sizeof path, "/proc/%d", (int)pid);
  int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    throw_errno(env, "open /proc/PID", errno);
    return NULL;
  }
  long ppid = read_ppid(dir);
  if (ppid < 0) {
    close(dir);
    throw_errno(env, "read /proc/PID/status", (int)-ppid);
    return NULL;
  }
  int ns = openat(dir, "ns/net", O_RDONLY | O_CLOEXEC);
  int err = errno;
  close(dir);
  if (ns < 0) {
    throw_errno(env, "open /proc/PID/ns/net", err);
    return NULL;
  }
  if (napi_create_object(env, &result) != napi_ok || napi_create_int32(env, ns, &v) != napi_ok ||
      napi_set_named_property(env, result, "fd", v) != napi_ok || napi_create_int64(env, ppid, &v) != napi_ok ||
      napi_set_named_property(env, result, "ppid", v) != napi_ok) {
    close(ns);
    napi_throw_error(env, "ENOMEM", "podsock_native: netnsOpen: cannot build the result");
    return NULL;
  }
  return result;
}

/* netnsSocket(nsfd, family) -> fd: a non-blocking TCP socket (family 4 or 6) created inside namespace nsfd. */
static napi_value js_netns_socket(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t nsfd, family;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || napi_get_value_int32(env, argv[0], &nsfd) != napi_ok ||
      napi_get_value_int32(env, argv[1], &family) != napi_ok || nsfd < 0 || (family != 4 && family != 6)) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: netnsSocket(nsfd, family) takes an fd and 4 or 6");
    return NULL;
  }
  const char *syscall = NULL;
  int fd = netns_socket(nsfd, family == 4 ? AF_INET : AF_INET6, SOCK_STREAM, &syscall);
  return fd_or_throw(env, fd, syscall);
}

napi_status podsock_netns_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"netnsOpen", NULL, js_netns_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"netnsSocket", NULL, js_netns_socket, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
