/*
 * The receiving end of a notify socket, shared by the addon (dgramOpen) and podsock-launch, so that a
 * socket podsock adopts from the launcher is the one it would have made: AF_UNIX SOCK_DGRAM, close-on-exec
 * and non-blocking, SO_PASSCRED set BEFORE bind so that no datagram can arrive without credentials
 * (unix(7); systemd ignores a notify message lacking them), and SO_RCVBUF bounded so that a peer cannot
 * queue unbounded memory.
 */
#ifndef PODSOCK_NOTIFY_SOCKET_H
#define PODSOCK_NOTIFY_SOCKET_H

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Receive queue bound in bytes (the kernel doubles it, socket(7) SO_RCVBUF). */
#define NOTIFY_RCVBUF_BYTES (256 * 1024)

/* The bound socket's fd, or -1 with errno set and *failed naming the call that failed. */
static inline int notify_socket_bind(const struct sockaddr_un *sun, socklen_t sun_len, const char **failed) {
  int one = 1, rcvbuf = NOTIFY_RCVBUF_BYTES;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) *failed = "socket";
  else if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
    *failed = "setsockopt(SO_PASSCRED)";
  else if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
    *failed = "setsockopt(SO_RCVBUF)";
  else if (bind(fd, (const struct sockaddr *)sun, sun_len) < 0)
    *failed = "bind";
  else
    return fd;
  int err = errno;
  if (fd >= 0) close(fd);
  errno = err;
  return -1;
}

#endif
