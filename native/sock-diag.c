/*
 * Counting the connections of unix listeners that the container accepts from (handover mode), from the
 * kernel's socket table through sock_diag(7) netlink (unix_diag: net/unix/diag.c).
 *
 * A connection is either still in the listener's accept queue or accepted. unix_diag does not list
 * queued ones (their socket has no inode yet, and sk_diag_dump() skips those); the listener's
 * UNIX_DIAG_RQLEN gives their number (for a listener, udiag_rqueue is the accept queue's length).
 * Accepted ones are listed, in state ESTABLISHED until both ends have closed.
 *
 * /proc/net/unix cannot be trusted for this: it prints socket names raw, so any local user can bind a
 * socket whose name holds a newline and a forged row naming the watched path. Here every row is a
 * binary netlink message, and a connection is matched by what the kernel itself records: the
 * listener's bound file (UDIAG_SHOW_VFS, the inode and device of the socket file), which every socket
 * accept() makes (or will make) from it shares (unix_stream_connect() gives the new socket the
 * listener's path), or, for an abstract name, which has no file, the exact name bytes (no other socket
 * can bind that name in the namespace while the listener holds it). The listener is found by the inode
 * of the fd podsock holds (fstat(2) of a socket gives the inode that unix_diag reports), not by its path,
 * so a file put in the path's place later changes nothing.
 *
 * The inode and device are compared only with values from the same netlink answers, so the kernel's
 * internal dev_t encoding there (s_dev, not stat(2)'s) never needs converting.
 *
 * Parsing is separate from the I/O: diag_row() reads one message into a row and checks every length.
 * What a dump returns is bounded by the host's socket count; it is read through one fixed buffer, never
 * collected, and a dump of more than DIAG_ROWS_MAX rows is refused.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sock-diag.h"
#include "internal.h"

/* TCP_ESTABLISHED and TCP_LISTEN (include/net/tcp_states.h): unix sockets use the same sk_state values. */
#define DIAG_STATE_ESTABLISHED 1
#define DIAG_STATE_LISTEN 10
/* Listeners counted in one call (podsock watches the few sockets of one unit). */
#define DIAG_LISTENERS_MAX 64
/* Rows read from one dump: a host with more connected unix sockets than this is refused (EOVERFLOW). */
#define DIAG_ROWS_MAX (1u << 22)
/* Read buffer: netlink dumps fill up to the size of the reader's buffer (at least 8 KiB). */
#define DIAG_BUFFER_BYTES (32 * 1024)
#define DIAG_NAME_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))

/* What one unix_diag message says about a socket. */
typedef struct {
  uint32_t ino; /* the socket's inode */
  uint8_t type, state;
  bool has_vfs;
  uint32_t vfs_ino, vfs_dev;
  uint32_t rqueue; /* a listener's accept queue length (UNIX_DIAG_RQLEN) */
  size_t name_len; /* 0: no name */
  unsigned char name[DIAG_NAME_MAX];
} diag_row_t;

/* A watched listener: what its connections share with it. */
typedef struct {
  uint32_t ino;
  bool found;
  diag_row_t row;
} listener_t;

/* Read one SOCK_DIAG_BY_FAMILY message into `row`. Pure. 0, or -EBADMSG for a malformed message. */
static int diag_row(const struct nlmsghdr *h, diag_row_t *row) {
  const struct unix_diag_msg *m;
  size_t off, len = h->nlmsg_len;
  if (len < NLMSG_LENGTH(sizeof *m)) return -EBADMSG;
  m = NLMSG_DATA(h);
  memset(row, 0, sizeof *row);
  row->ino = m->udiag_ino;
  row->type = m->udiag_type;
  row->state = m->udiag_state;
  for (off = NLMSG_LENGTH(NLMSG_ALIGN(sizeof *m)); off + sizeof(struct nlattr) <= len;) {
    const struct nlattr *a = (const struct nlattr *)((const char *)h + off);
    size_t alen = a->nla_len;
    const void *data = (const char *)a + NLA_HDRLEN;
    if (alen < NLA_HDRLEN || alen > len - off) return -EBADMSG;
    switch (a->nla_type & NLA_TYPE_MASK) {
      case UNIX_DIAG_NAME:
        if (alen - NLA_HDRLEN > DIAG_NAME_MAX) return -EBADMSG;
        row->name_len = alen - NLA_HDRLEN;
        memcpy(row->name, data, row->name_len);
        break;
      case UNIX_DIAG_VFS: {
        struct unix_diag_vfs v;
        if (alen - NLA_HDRLEN < sizeof v) return -EBADMSG;
        memcpy(&v, data, sizeof v);
        row->has_vfs = true;
        row->vfs_ino = v.udiag_vfs_ino;
        row->vfs_dev = v.udiag_vfs_dev;
        break;
      }
      case UNIX_DIAG_RQLEN: {
        struct unix_diag_rqlen q;
        if (alen - NLA_HDRLEN < sizeof q) return -EBADMSG;
        memcpy(&q, data, sizeof q);
        row->rqueue = q.udiag_rqueue;
        break;
      }
      default:
        break;
    }
    off += NLA_ALIGN(alen);
  }
  return 0;
}

/* True when `row` is a connection of listener `l`. Pure. A listener bound to a file is matched on that
 * file alone; an abstract one (no file) on its exact name. */
static bool diag_row_matches(const diag_row_t *row, const diag_row_t *l) {
  if (row->state != DIAG_STATE_ESTABLISHED || row->type != l->type) return false;
  if (l->has_vfs) return row->has_vfs && row->vfs_ino == l->vfs_ino && row->vfs_dev == l->vfs_dev;
  return l->name_len > 0 && row->name_len == l->name_len && memcmp(row->name, l->name, l->name_len) == 0;
}

typedef struct {
  listener_t *listeners;
  size_t n;
  bool listening; /* this dump lists listeners (else connections) */
  uint64_t count;
  uint32_t rows;
} dump_t;

/* One row of a dump: record a watched listener, or count a connection once. */
static int dump_row(dump_t *d, const diag_row_t *row) {
  if (++d->rows > DIAG_ROWS_MAX) return -EOVERFLOW;
  for (size_t i = 0; i < d->n; i++) {
    listener_t *l = &d->listeners[i];
    if (d->listening) {
      if (row->ino == l->ino && row->state == DIAG_STATE_LISTEN && !l->found) {
        l->row = *row;
        l->found = true;
        d->count += row->rqueue;
      }
    } else if (l->found && diag_row_matches(row, &l->row)) {
      d->count++;
      break;
    }
  }
  return 0;
}

/* Dump the unix sockets in `states` over netlink socket `fd` and feed each row to dump_row.
 * 0 or a negative errno; -EPROTONOSUPPORT when the kernel has no unix_diag. */
static int dump(int fd, uint32_t states, uint32_t seq, dump_t *d) {
  struct {
    struct nlmsghdr h;
    struct unix_diag_req r;
  } req;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  uint32_t buf[DIAG_BUFFER_BYTES / sizeof(uint32_t)]; /* nlmsghdr alignment */

  memset(&req, 0, sizeof req);
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = seq;
  req.r.sdiag_family = AF_UNIX;
  req.r.udiag_states = states;
  req.r.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_RQLEN;
  for (;;) {
    if (sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel) >= 0) break;
    if (errno != EINTR) return -errno;
  }
  for (;;) {
    struct sockaddr_nl from;
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
    struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(fd, &mh, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (mh.msg_flags & MSG_TRUNC) return -EMSGSIZE;
    /* Only the kernel (port 0) answers (the socket is connected to it; checked again here). */
    if (mh.msg_namelen < sizeof from || from.nl_family != AF_NETLINK || from.nl_pid != 0) continue;
    int left = (int)n;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) return 0;
      if (h->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *e = NLMSG_DATA(h);
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof *e)) return -EBADMSG;
        /* sock_diag answers ENOENT for a family it has no handler for (no unix_diag module). */
        return e->error == -ENOENT ? -EPROTONOSUPPORT : e->error < 0 ? e->error : -EBADMSG;
      }
      if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
      diag_row_t row;
      int r = diag_row(h, &row);
      if (r < 0) return r;
      r = dump_row(d, &row);
      if (r < 0) return r;
    }
  }
}

/* Count the connections of the unix listeners `fds` (accepted or still queued, until both ends closed).
 * 0 and *count, or a negative errno: -ESRCH when an fd is not a listening unix socket of this network
 * namespace, -EAFNOSUPPORT/-EPROTONOSUPPORT when the kernel has no sock_diag for unix sockets. */
static int unix_connections(const int *fds, size_t n, uint64_t *count) {
  const struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  listener_t listeners[DIAG_LISTENERS_MAX];
  dump_t d = {.listeners = listeners, .n = n, .listening = true};
  int fd, r;

  if (n > DIAG_LISTENERS_MAX) return -E2BIG;
  d.n = 0;
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    bool seen = false;
    if (fstat(fds[i], &st) < 0) return -errno;
    if (!S_ISSOCK(st.st_mode) || st.st_ino > UINT32_MAX) return -ENOTSOCK;
    /* Two fds of one socket are one listener: its queue must not count twice. */
    for (size_t j = 0; j < d.n; j++) seen = seen || listeners[j].ino == (uint32_t)st.st_ino;
    if (!seen) listeners[d.n++] = (listener_t){.ino = (uint32_t)st.st_ino};
  }
  fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return -errno;
  /* Connected to the kernel, the socket refuses messages from any other port (af_netlink.c
   * netlink_getsockbyportid(): ECONNREFUSED), so no local process can feed it rows or flood it. */
  if (connect(fd, (const struct sockaddr *)&kernel, sizeof kernel) < 0) {
    r = -errno;
    close(fd);
    return r;
  }
  r = dump(fd, 1u << DIAG_STATE_LISTEN, 1, &d);
  for (size_t i = 0; r == 0 && i < d.n; i++) {
    if (!listeners[i].found) r = -ESRCH;
  }
  if (r == 0) {
    d.listening = false;
    d.rows = 0;
    r = dump(fd, 1u << DIAG_STATE_ESTABLISHED, 2, &d);
  }
  close(fd);
  if (r == 0) *count = d.count;
  return r;
}

/* unixConnections(fds: number[]) -> number: the connections of these listening unix sockets, each
 * counted once. Throws an errno Error (spawn.h throw_errno) on failure. */
static napi_value js_unix_connections(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], v;
  bool is_array = false;
  uint32_t len = 0;
  int fds[DIAG_LISTENERS_MAX];
  uint64_t count = 0;
  int r;

  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[0], &len) != napi_ok || len > DIAG_LISTENERS_MAX) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: unixConnections(fds) takes an array of at most 64 fds");
    return NULL;
  }
  for (uint32_t i = 0; i < len; i++) {
    if (napi_get_element(env, argv[0], i, &v) != napi_ok || napi_get_value_int32(env, v, &fds[i]) != napi_ok || fds[i] < 0) {
      napi_throw_type_error(env, "EINVAL", "podsock_native: unixConnections(fds) takes non-negative integer fds");
      return NULL;
    }
  }
  r = unix_connections(fds, len, &count);
  if (r < 0) {
    throw_errno(env, "sock_diag", -r);
    return NULL;
  }
  if (napi_create_double(env, (double)count, &v) != napi_ok) return NULL;
  return v;
}

napi_status podsock_sock_diag_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"unixConnections", NULL, js_unix_connections, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
