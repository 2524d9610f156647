/*
 * The UDP proxy engine: proxy mode's data path for a datagram socket (ListenDatagram=), on uv_polls of
 * Node's own loop, with no call into JS per datagram.
 *
 * One engine serves one listening UDP socket (a dup of systemd's; it is closed, never shutdown()). Each
 * client address gets a flow (udp-flows.h): its own upstream socket connect()ed to the backend, so that
 * the backend's replies on it belong to that client and go back from the listening socket, from the
 * local address the client's datagram was sent to (IP_PKTINFO / IPV6_PKTINFO, ip(7) and ipv6(7): a
 * socket bound to the wildcard on a host with several addresses answers from the right one). Before the
 * backend is known (setTarget), datagrams wait in a queue bounded in count and bytes that drops its
 * oldest first. A connected UDP socket learns of an ICMP port unreachable as ECONNREFUSED (udp(7)):
 * while a flow has had no reply yet (the container is starting), it resends what it keeps of its first
 * datagrams with a doubling delay instead of losing them.
 *
 * JS hears of counts only when they change, coalesced at the end of each loop callback (a `count`
 * event), of drops at most once per DROP_EVENT_MS with the running totals, and of an error that stops
 * the engine. Everything is counted (udpProxyInfo).
 */
#include "internal.h"
#include "handle.h"
#include "netns.h"
#include "proxy-v2.h"
#include "udp-flows.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* The largest datagram read and delivered whole; one larger is MSG_TRUNC, dropped and counted. */
#define DGRAM_MAX 65535
/* Datagrams per recvmmsg(2)/sendmmsg(2). The buffers (64 KiB each) are malloc'ed once per engine: the
 * kernel backs only the pages a datagram touches. */
#define BATCH 16
/* recvmmsg calls per wake-up: a flood yields to the loop (timers, other I/O) after BATCH * this. */
#define WAKE_BATCHES 4
/* What a flow without a reply keeps for resending after ECONNREFUSED, and for how long it tries. All
 * flows together keep at most queueBytes (a backend that never answers must not make every flow keep
 * its share). */
#define KEEP_DATAGRAMS 8
#define KEEP_BYTES 65536
#define RETRY_FIRST_MS 50
#define RETRY_DELAY_MAX_MS 1000
#define RETRY_WINDOW_MS 5000
/* At most one drop event per this many milliseconds. */
#define DROP_EVENT_MS 1000
/* Bounds of the options (the TypeScript wrapper checks them first, with a clearer message). */
#define QUEUE_DATAGRAMS_MAX 65536
#define QUEUE_BYTES_MAX (64u << 20)

/* Where a client's datagram arrived: the local address (port: the listening socket's) and interface. */
typedef struct {
  udp_addr_t addr;  /* sa_family 0: not known (no pktinfo came with it) */
  int ifindex;
} local_t;

/* A datagram queued before the target is known, or kept by a flow for resending. */
typedef struct packet packet_t;
struct packet {
  packet_t *next;
  udp_addr_t client;
  local_t local;
  size_t len;
  uint8_t data[];
};

typedef struct udp_proxy udp_proxy_t;

typedef struct flow flow_t;
struct flow {
  udp_flow_t f;             /* first: the table's part (client address, activity) */
  udp_proxy_t *p;
  int fd;                   /* the upstream socket, connected to the target */
  uv_poll_t poll;
  local_t local;            /* where the client's last datagram arrived: replies leave from there */
  bool replied;             /* the backend answered: ECONNREFUSED is only counted from now on */
  uint64_t first_ms;        /* the first datagram sent: the retry window starts here */
  packet_t *kept, **kept_tail;
  unsigned kept_count;
  size_t kept_bytes;
  bool retrying;            /* on the engine's retry list, resending at retry_at */
  uint64_t retry_at;
  uint32_t retry_delay;
  flow_t *retry_prev, *retry_next;
};

_Static_assert(offsetof(flow_t, f) == 0, "udp_flow_t comes first");

typedef struct {
  uint64_t dropped, evicted, expired, truncated, refused, failed;
  uint64_t datagrams_in, bytes_in, datagrams_out, bytes_out;
} counters_t;

struct udp_proxy {
  handle_t h;               /* first: owners (wrapper, poll, timer, each flow's poll), onEvent */
  int fd;                   /* the listening socket, -1 once closed */
  int family;               /* its family: AF_INET or AF_INET6 */
  uint16_t port;            /* its port, network order */
  udp_addr_t bound;         /* its bound address (getsockname); a wildcard says nothing of the local one */
  bool bound_specific;      /* bound to one address: the local address of every datagram */
  bool poll_init, timer_init, closed, stopped;
  uv_loop_t *loop;
  uv_poll_t poll;
  uv_timer_t timer;
  bool timer_armed;
  uint64_t timer_due;
  udp_flows_t flows;
  uint32_t queue_max;
  size_t queue_bytes_max;
  bool proxy_v2;
  bool has_target;
  udp_addr_t target;
  socklen_t target_len;
  int netns_fd;             /* a dup of the caller's, or -1 */
  packet_t *q_head, *q_tail;
  size_t q_count, q_bytes;
  flow_t *retry_head;
  size_t kept_bytes;        /* what all flows keep for resending: at most queue_bytes_max together */
  counters_t c;
  size_t reported_flows, reported_queued;
  bool report_pending;      /* counts changed outside a loop callback: report from the timer */
  uint64_t drops_reported, drop_event_at;
  uint8_t *bufs;            /* BATCH * DGRAM_MAX */
};

_Static_assert(offsetof(udp_proxy_t, h) == 0, "handle_t comes first");

static uint64_t drops_total(const udp_proxy_t *p) {
  return p->c.dropped + p->c.truncated + p->c.failed;
}

/* ------------------------------------------------------------------------------------------------ */
/* Flows                                                                                            */

static void kept_free(flow_t *fl) {
  fl->p->kept_bytes -= fl->kept_bytes;
  while (fl->kept != NULL) {
    packet_t *k = fl->kept;
    fl->kept = k->next;
    free(k);
  }
  fl->kept_tail = &fl->kept;
  fl->kept_count = 0;
  fl->kept_bytes = 0;
}

static void retry_unlink(flow_t *fl) {
  if (!fl->retrying) return;
  if (fl->retry_prev != NULL) fl->retry_prev->retry_next = fl->retry_next;
  else fl->p->retry_head = fl->retry_next;
  if (fl->retry_next != NULL) fl->retry_next->retry_prev = fl->retry_prev;
  fl->retry_prev = fl->retry_next = NULL;
  fl->retrying = false;
}

static void flow_on_closed(uv_handle_t *h) {
  flow_t *fl = h->data;
  udp_proxy_t *p = fl->p;
  free(fl);
  handle_unref(&p->h);
}

/* Close a flow that is no longer in the table: its socket now, its memory in the poll's close callback. */
static void flow_close(flow_t *fl) {
  retry_unlink(fl);
  kept_free(fl);
  uv_poll_stop(&fl->poll);
  close(fl->fd);
  fl->fd = -1;
  uv_close((uv_handle_t *)&fl->poll, flow_on_closed);
}

static void flows_close_all(udp_proxy_t *p) {
  udp_flow_t *f;
  while ((f = udp_flows_pop(&p->flows)) != NULL) flow_close((flow_t *)f);
}

/* Keep a copy of a datagram sent to a backend that has not answered yet (bounded). */
static void flow_keep(flow_t *fl, const uint8_t *data, size_t len, uint64_t now) {
  if (fl->replied || now - fl->first_ms >= RETRY_WINDOW_MS || fl->kept_count >= KEEP_DATAGRAMS ||
      fl->kept_bytes + len > KEEP_BYTES || fl->p->kept_bytes + len > fl->p->queue_bytes_max)
    return;
  packet_t *k = malloc(sizeof *k + len);
  if (k == NULL) return;
  k->next = NULL;
  k->len = len;
  memcpy(k->data, data, len);
  *fl->kept_tail = k;
  fl->kept_tail = &k->next;
  fl->kept_count++;
  fl->kept_bytes += len;
  fl->p->kept_bytes += len;
}

/* The backend refused (ICMP port unreachable): resend later while the flow has had no reply and is in
 * its window, else only count it. */
static void flow_refused(flow_t *fl, uint64_t now) {
  udp_proxy_t *p = fl->p;
  p->c.refused++;
  if (fl->replied || now - fl->first_ms >= RETRY_WINDOW_MS || fl->kept == NULL) {
    kept_free(fl);
    return;
  }
  if (fl->retrying) return;
  fl->retry_at = now + fl->retry_delay;
  fl->retry_delay = fl->retry_delay * 2 > RETRY_DELAY_MAX_MS ? RETRY_DELAY_MAX_MS : fl->retry_delay * 2;
  fl->retrying = true;
  fl->retry_prev = NULL;
  fl->retry_next = p->retry_head;
  if (p->retry_head != NULL) p->retry_head->retry_prev = fl;
  p->retry_head = fl;
}

/* Send one datagram upstream, behind a PROXY v2 header when asked. 0 or a negative errno. */
static int flow_send(flow_t *fl, const udp_addr_t *client, const local_t *local, const uint8_t *data, size_t len) {
  uint8_t header[PROXY_V2_MAX];
  struct iovec iov[2];
  struct msghdr mh = {.msg_iov = iov};
  if (fl->p->proxy_v2) {
    int n = proxy_v2_dgram(header, sizeof header, &client->sa, local->addr.sa.sa_family != 0 ? &local->addr.sa : NULL);
    iov[mh.msg_iovlen++] = (struct iovec){.iov_base = header, .iov_len = n < 0 ? 0 : (size_t)n};
  }
  iov[mh.msg_iovlen++] = (struct iovec){.iov_base = (void *)data, .iov_len = len};
  for (;;) {
    if (sendmsg(fl->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) return 0;
    if (errno != EINTR) return -errno;
  }
}

static void flow_on_readable(uv_poll_t *h, int status, int events);

/* A new flow for `client`: an upstream socket (in the target's network namespace) connected to the
 * target, polled, in the table. The least recently active flow makes room at MaxFlows. */
static int flow_open(udp_proxy_t *p, const udp_addr_t *client, uint64_t now, flow_t **out) {
  const char *syscall;
  int fd = netns_socket(p->netns_fd, p->target.sa.sa_family, SOCK_DGRAM, &syscall);
  if (fd < 0) return fd;
  int rc;
  do rc = connect(fd, &p->target.sa, p->target_len);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    rc = -errno;
    close(fd);
    return rc;
  }
  flow_t *fl = calloc(1, sizeof *fl);
  if (fl == NULL) {
    close(fd);
    return -ENOMEM;
  }
  rc = uv_poll_init(p->loop, &fl->poll, fd);
  if (rc < 0) {
    close(fd);
    free(fl);
    return rc;
  }
  fl->p = p;
  fl->fd = fd;
  fl->poll.data = fl;
  fl->kept_tail = &fl->kept;
  fl->first_ms = now;
  fl->retry_delay = RETRY_FIRST_MS;
  handle_ref(&p->h);
  uv_poll_start(&fl->poll, UV_READABLE, flow_on_readable);
  udp_flow_t *evicted = udp_flows_insert(&p->flows, &fl->f, &client->sa, now);
  if (evicted != NULL) {
    p->c.evicted++;
    flow_close((flow_t *)evicted);
  }
  *out = fl;
  return 0;
}

/* A datagram from `client` goes to the backend through the client's flow. */
static void deliver(udp_proxy_t *p, const udp_addr_t *client, const local_t *local, const uint8_t *data, size_t len, uint64_t now) {
  flow_t *fl = (flow_t *)udp_flows_find(&p->flows, &client->sa);
  if (fl == NULL && flow_open(p, client, now, &fl) < 0) {
    p->c.failed++; /* EMFILE, ENOBUFS...: this datagram is lost, the next one tries again */
    return;
  }
  udp_flows_touch(&p->flows, &fl->f, now);
  fl->local = *local;
  int rc = flow_send(fl, client, local, data, len);
  if (rc == -ECONNREFUSED) {
    /* An earlier datagram was refused; the error was reported instead of sending this one. */
    flow_keep(fl, data, len, now);
    flow_refused(fl, now);
    if (fl->replied && flow_send(fl, client, local, data, len) < 0) p->c.failed++;
    return;
  }
  if (rc < 0) {
    p->c.failed++;
    return;
  }
  flow_keep(fl, data, len, now);
}

/* Resend what a flow keeps (its retry is due). */
static void flow_retry(flow_t *fl, uint64_t now) {
  retry_unlink(fl);
  if (fl->replied || now - fl->first_ms >= RETRY_WINDOW_MS) {
    kept_free(fl);
    return;
  }
  for (packet_t *k = fl->kept; k != NULL; k = k->next) {
    int rc = flow_send(fl, &fl->f.client, &fl->local, k->data, k->len);
    if (rc == -ECONNREFUSED) {
      flow_refused(fl, now);
      return;
    }
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* Ancillary data: the local address of a received datagram, and the source of a reply               */

#define CONTROL_MAX 128

static void local_from_control(const udp_proxy_t *p, struct msghdr *mh, local_t *l) {
  memset(l, 0, sizeof *l);
  for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
      struct in_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      l->addr.in4.sin_family = AF_INET;
      l->addr.in4.sin_port = p->port;
      l->addr.in4.sin_addr = pi.ipi_spec_dst; /* ip(7): the local address; for unicast, the destination */
      l->ifindex = pi.ipi_ifindex;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
      struct in6_pktinfo pi;
      memcpy(&pi, CMSG_DATA(c), sizeof pi);
      l->addr.in6.sin6_family = AF_INET6;
      l->addr.in6.sin6_port = p->port;
      l->addr.in6.sin6_addr = pi.ipi6_addr;
      if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr)) l->addr.in6.sin6_scope_id = pi.ipi6_ifindex;
      l->ifindex = (int)pi.ipi6_ifindex;
    }
  }
  /* Datagrams queued in the socket before IP_PKTINFO was switched on (under socket activation, the
   * ones that started the service) come without it, or with an all-zero one (the kernel records the
   * address at enqueue time only when the option is on: ip_cmsg_recv_pktinfo(), net/ipv4/ip_sockglue.c).
   * A socket bound to one address still tells where they arrived; for a wildcard one it stays unknown. */
  bool unknown = l->addr.sa.sa_family == 0 || (l->addr.sa.sa_family == AF_INET && l->addr.in4.sin_addr.s_addr == htonl(INADDR_ANY)) ||
                 (l->addr.sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&l->addr.in6.sin6_addr));
  if (unknown) {
    memset(l, 0, sizeof *l);
    if (p->bound_specific) l->addr = p->bound;
  }
}

/* The control message that makes a reply leave from `l`; its length, 0 for none. */
static size_t reply_control(const udp_proxy_t *p, const local_t *l, char *buf) {
  /* A socket bound to one address sends from it anyway: no control message to build and parse. */
  if (p->bound_specific) return 0;
  struct msghdr mh = {.msg_control = buf, .msg_controllen = CONTROL_MAX};
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  memset(buf, 0, CONTROL_MAX);
  if (p->family == AF_INET && l->addr.sa.sa_family == AF_INET) {
    struct in_pktinfo pi = {.ipi_ifindex = 0, .ipi_spec_dst = l->addr.in4.sin_addr};
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof pi);
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
    return CMSG_SPACE(sizeof pi);
  }
  if (p->family == AF_INET6 && l->addr.sa.sa_family == AF_INET6) {
    struct in6_pktinfo pi = {.ipi6_addr = l->addr.in6.sin6_addr, .ipi6_ifindex = (unsigned)l->ifindex};
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof pi);
    memcpy(CMSG_DATA(c), &pi, sizeof pi);
    return CMSG_SPACE(sizeof pi);
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* Events to JS                                                                                      */

static void set_num(napi_env env, napi_value obj, const char *name, double v) {
  napi_value n;
  if (napi_create_double(env, v, &n) == napi_ok) napi_set_named_property(env, obj, name, n);
}

static void set_str(napi_env env, napi_value obj, const char *name, const char *s) {
  napi_value v;
  if (napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, name, v);
}

/* onEvent(event) with an object made by `fill`. */
static void emit(udp_proxy_t *p, const char *type, int err, const char *syscall) {
  napi_env env = p->h.env;
  napi_handle_scope scope;
  napi_value ev, self;
  if (p->closed || p->h.env_gone || p->h.callback == NULL || p->h.self == NULL) return;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_create_object(env, &ev) != napi_ok) goto out;
  set_str(env, ev, "type", type);
  if (strcmp(type, "count") == 0) {
    set_num(env, ev, "flows", (double)p->flows.count);
    set_num(env, ev, "queued", (double)p->q_count);
  } else if (strcmp(type, "drop") == 0) {
    set_num(env, ev, "dropped", (double)p->c.dropped);
    set_num(env, ev, "truncated", (double)p->c.truncated);
    set_num(env, ev, "failed", (double)p->c.failed);
  } else {
    napi_value e = errno_error(env, syscall, err);
    if (e != NULL) napi_set_named_property(env, ev, "error", e);
  }
  if (napi_get_reference_value(env, p->h.self, &self) != napi_ok) goto out;
  handle_call(&p->h, self, 1, &ev);
out:
  napi_close_handle_scope(env, scope);
}

static void timer_arm(udp_proxy_t *p, uint64_t due);

/* At the end of each loop callback: tell JS what changed. */
static void report(udp_proxy_t *p) {
  uint64_t now = uv_now(p->loop);
  p->report_pending = false;
  if (p->flows.count != p->reported_flows || (p->q_count == 0) != (p->reported_queued == 0)) {
    p->reported_flows = p->flows.count;
    p->reported_queued = p->q_count;
    emit(p, "count", 0, NULL);
  }
  if (p->closed) return;
  uint64_t drops = drops_total(p);
  if (drops != p->drops_reported) {
    if (p->drop_event_at == 0 || now >= p->drop_event_at + DROP_EVENT_MS) {
      p->drops_reported = drops;
      p->drop_event_at = now;
      emit(p, "drop", 0, NULL);
    } else {
      timer_arm(p, p->drop_event_at + DROP_EVENT_MS);
    }
  }
}

/* ------------------------------------------------------------------------------------------------ */
/* The timer: expiry, retries, deferred reports                                                      */

static void on_timer(uv_timer_t *t);

/* Make the timer fire at `due` at the latest. */
static void timer_arm(udp_proxy_t *p, uint64_t due) {
  if (p->closed || !p->timer_init || due == UINT64_MAX) return;
  if (p->timer_armed && p->timer_due <= due) return;
  uint64_t now = uv_now(p->loop);
  p->timer_armed = true;
  p->timer_due = due;
  uv_timer_start(&p->timer, on_timer, due > now ? due - now : 0, 0);
}

/* Arm the timer for the next expiry and the next retry. */
static void timer_rearm(udp_proxy_t *p) {
  uint64_t due = udp_flows_next_expiry(&p->flows);
  for (flow_t *fl = p->retry_head; fl != NULL; fl = fl->retry_next)
    if (fl->retry_at < due) due = fl->retry_at;
  if (p->report_pending) due = uv_now(p->loop);
  timer_arm(p, due);
}

static void on_timer(uv_timer_t *t) {
  udp_proxy_t *p = t->data;
  uint64_t now = uv_now(p->loop);
  udp_flow_t *f;
  p->timer_armed = false;
  if (p->closed) return;
  while ((f = udp_flows_expire(&p->flows, now)) != NULL) {
    p->c.expired++;
    flow_close((flow_t *)f);
  }
  for (flow_t *fl = p->retry_head, *next; fl != NULL; fl = next) {
    next = fl->retry_next;
    if (fl->retry_at <= now) flow_retry(fl, now);
  }
  report(p);
  if (!p->closed) timer_rearm(p);
}

/* ------------------------------------------------------------------------------------------------ */
/* The data path                                                                                     */

static void engine_stop(udp_proxy_t *p, const char *syscall, int err) {
  if (p->poll_init && !p->stopped) uv_poll_stop(&p->poll);
  p->stopped = true;
  emit(p, "error", err, syscall);
}

static void queue_push(udp_proxy_t *p, const udp_addr_t *client, const local_t *local, const uint8_t *data, size_t len) {
  if (len > p->queue_bytes_max || p->queue_max == 0) {
    p->c.dropped++;
    return;
  }
  while (p->q_head != NULL && (p->q_count >= p->queue_max || p->q_bytes + len > p->queue_bytes_max)) {
    packet_t *old = p->q_head; /* the oldest goes first */
    p->q_head = old->next;
    if (p->q_head == NULL) p->q_tail = NULL;
    p->q_count--;
    p->q_bytes -= old->len;
    free(old);
    p->c.dropped++;
  }
  packet_t *k = malloc(sizeof *k + len);
  if (k == NULL) {
    p->c.dropped++;
    return;
  }
  k->next = NULL;
  k->client = *client;
  k->local = *local;
  k->len = len;
  memcpy(k->data, data, len);
  if (p->q_tail != NULL) p->q_tail->next = k;
  else p->q_head = k;
  p->q_tail = k;
  p->q_count++;
  p->q_bytes += len;
}

static void queue_free(udp_proxy_t *p) {
  while (p->q_head != NULL) {
    packet_t *k = p->q_head;
    p->q_head = k->next;
    free(k);
  }
  p->q_tail = NULL;
  p->q_count = 0;
  p->q_bytes = 0;
}

/* Deliver the queue in arrival order (the target was just set). */
static void queue_flush(udp_proxy_t *p) {
  uint64_t now = uv_now(p->loop);
  while (p->q_head != NULL && p->has_target && !p->closed) {
    packet_t *k = p->q_head;
    p->q_head = k->next;
    if (p->q_head == NULL) p->q_tail = NULL;
    p->q_count--;
    p->q_bytes -= k->len;
    deliver(p, &k->client, &k->local, k->data, k->len, now);
    free(k);
  }
}

/* Datagrams from clients on the listening socket. */
static void on_readable(uv_poll_t *h, int status, int events) {
  udp_proxy_t *p = h->data;
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  udp_addr_t names[BATCH];
  char control[BATCH][CONTROL_MAX];
  if (p->closed) return;
  if (status < 0) {
    /* libuv stops the poll on POLLERR (src/unix/poll.c uv__poll_io): read the pending error. */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
      engine_stop(p, "getsockopt(SO_ERROR)", errno);
      return;
    }
    uv_poll_start(&p->poll, UV_READABLE, on_readable);
    return;
  }
  uint64_t now = uv_now(p->loop);
  for (int round = 0; round < WAKE_BATCHES && !p->closed; round++) {
    for (int i = 0; i < BATCH; i++) {
      iov[i] = (struct iovec){.iov_base = p->bufs + (size_t)i * DGRAM_MAX, .iov_len = DGRAM_MAX};
      msgs[i].msg_hdr = (struct msghdr){.msg_name = &names[i], .msg_namelen = sizeof names[i], .msg_iov = &iov[i],
                                        .msg_iovlen = 1, .msg_control = control[i], .msg_controllen = CONTROL_MAX};
    }
    int n = recvmmsg(p->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNREFUSED || errno == ENOMEM || errno == ENOBUFS) break;
      engine_stop(p, "recvmmsg", errno);
      break;
    }
    for (int i = 0; i < n; i++) {
      struct msghdr *mh = &msgs[i].msg_hdr;
      size_t len = msgs[i].msg_len;
      local_t local;
      if (mh->msg_flags & MSG_TRUNC) {
        p->c.truncated++;
        continue;
      }
      if (!udp_addr_valid(&names[i].sa)) continue;
      p->c.datagrams_in++;
      p->c.bytes_in += len;
      local_from_control(p, mh, &local);
      if (p->has_target) deliver(p, &names[i], &local, iov[i].iov_base, len, now);
      else queue_push(p, &names[i], &local, iov[i].iov_base, len);
    }
    if (n < BATCH) break;
  }
  report(p);
  if (!p->closed) timer_rearm(p);
}

/* Replies from the backend on a flow's socket go back to its client. */
static void flow_on_readable(uv_poll_t *h, int status, int events) {
  flow_t *fl = h->data;
  udp_proxy_t *p = fl->p;
  struct mmsghdr in[BATCH], out[BATCH];
  struct iovec iov[BATCH];
  char control[CONTROL_MAX];
  uint64_t now = uv_now(p->loop);
  if (p->closed || fl->fd < 0) return;
  if (status < 0) {
    /* POLLERR: the pending error is ICMP's (udp(7)); reading SO_ERROR clears it. */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fl->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == ECONNREFUSED) flow_refused(fl, now);
    uv_poll_start(&fl->poll, UV_READABLE, flow_on_readable);
    goto done;
  }
  size_t control_len = reply_control(p, &fl->local, control);
  for (int round = 0; round < WAKE_BATCHES; round++) {
    for (int i = 0; i < BATCH; i++) {
      iov[i] = (struct iovec){.iov_base = p->bufs + (size_t)i * DGRAM_MAX, .iov_len = DGRAM_MAX};
      in[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
    }
    int n = recvmmsg(fl->fd, in, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNREFUSED) {
        flow_refused(fl, now);
        continue;
      }
      break; /* EAGAIN; anything else on a connected UDP socket is another ICMP error: nothing to do */
    }
    int m = 0;
    for (int i = 0; i < n; i++) {
      if (in[i].msg_hdr.msg_flags & MSG_TRUNC) {
        p->c.truncated++;
        continue;
      }
      iov[i].iov_len = in[i].msg_len;
      out[m].msg_hdr = (struct msghdr){.msg_name = &fl->f.client, .msg_iov = &iov[i], .msg_iovlen = 1,
                                       .msg_control = control_len > 0 ? control : NULL, .msg_controllen = control_len};
      out[m].msg_hdr.msg_namelen = fl->f.client.sa.sa_family == AF_INET ? sizeof fl->f.client.in4 : sizeof fl->f.client.in6;
      m++;
    }
    if (n > 0 && !fl->replied) {
      fl->replied = true;
      retry_unlink(fl);
      kept_free(fl);
    }
    if (n > 0) udp_flows_touch(&p->flows, &fl->f, now);
    for (int sent = 0; sent < m;) {
      int k = sendmmsg(p->fd, out + sent, (unsigned)(m - sent), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        p->c.failed += (uint64_t)(m - sent); /* the client's receive path is full (EAGAIN): lost, as UDP may */
        break;
      }
      for (int i = sent; i < sent + k; i++) {
        p->c.datagrams_out++;
        p->c.bytes_out += out[i].msg_len;
      }
      sent += k;
    }
    if (n < BATCH) break;
  }
done:
  report(p);
  if (!p->closed) timer_rearm(p);
}

/* ------------------------------------------------------------------------------------------------ */
/* Life cycle                                                                                        */

/* Close every flow and fd, drop the queue. Idempotent. `js`: Node-API references may be released. */
static void udp_proxy_shutdown(udp_proxy_t *p, bool js) {
  if (!p->closed) {
    p->closed = true;
    if (p->flows.buckets != NULL) {
      flows_close_all(p);
      udp_flows_free(&p->flows);
    }
    queue_free(p);
    free(p->bufs);
    p->bufs = NULL;
    if (p->poll_init) {
      p->poll_init = false;
      uv_close((uv_handle_t *)&p->poll, handle_on_uv_closed);
    }
    if (p->timer_init) {
      p->timer_init = false;
      uv_close((uv_handle_t *)&p->timer, handle_on_uv_closed);
    }
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
    if (p->netns_fd >= 0) close(p->netns_fd);
    p->netns_fd = -1;
  }
  if (js) handle_js_drop(&p->h);
  handle_unhook(&p->h);
}

static void udp_proxy_on_env_gone(handle_t *h) {
  udp_proxy_shutdown((udp_proxy_t *)h, false);
}

static void udp_proxy_finalize(napi_env env, void *data, void *hint) {
  udp_proxy_t *p = data;
  udp_proxy_shutdown(p, false);
  handle_unref(&p->h);
}

static udp_proxy_t *unwrap_udp_proxy(napi_env env, napi_value obj) {
  void *data = NULL;
  if (napi_unwrap(env, obj, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: not a UDP proxy handle");
    return NULL;
  }
  return data;
}

static int arg_range(napi_env env, napi_value v, const char *what, int64_t min, int64_t max, int64_t *out) {
  int32_t i;
  if (arg_int32(env, v, what, &i) < 0) return -EINVAL;
  if (i < min || i > max) {
    throw_errno(env, what, EINVAL);
    return -EINVAL;
  }
  *out = i;
  return 0;
}

/*
 * udpProxyOpen(fd, flowTimeoutMs, maxFlows, queueDatagrams, queueBytes, proxyV2, onEvent) -> handle
 *
 * Start serving the UDP socket `fd` (AF_INET or AF_INET6, SOCK_DGRAM, bound): datagrams are read at
 * once and queued until udpProxySetTarget. The engine owns `fd` once this returns; when it throws, the
 * caller still does. IP_PKTINFO / IPV6_RECVPKTINFO are switched on for it (they only add ancillary data
 * to what recvmsg returns). An active engine keeps the loop alive.
 */
static napi_value js_udp_proxy_open(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7], handle;
  napi_valuetype t;
  int32_t fd;
  int64_t timeout_ms, max_flows, queue_max, queue_bytes;
  bool proxy_v2;
  int type = 0, domain = 0, one = 1, rc;
  socklen_t optlen = sizeof type;
  udp_addr_t bound;
  socklen_t bound_len = sizeof bound;
  uint32_t seed = 0;
  udp_proxy_t *p;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: udpProxyOpen needs 7 arguments");
    return NULL;
  }
  if (arg_int32(env, argv[0], "fd", &fd) < 0 || arg_range(env, argv[1], "flowTimeoutMs", 1, INT32_MAX, &timeout_ms) < 0 ||
      arg_range(env, argv[2], "maxFlows", 1, UDP_FLOWS_MAX, &max_flows) < 0 ||
      arg_range(env, argv[3], "queueDatagrams", 0, QUEUE_DATAGRAMS_MAX, &queue_max) < 0 ||
      arg_range(env, argv[4], "queueBytes", 0, QUEUE_BYTES_MAX, &queue_bytes) < 0)
    return NULL;
  NAPI_CALL(env, napi_get_value_bool(env, argv[5], &proxy_v2));
  NAPI_CALL(env, napi_typeof(env, argv[6], &t));
  if (t != napi_function) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: onEvent must be a function");
    return NULL;
  }
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) < 0 ||
      (optlen = sizeof domain, getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &optlen)) < 0) {
    throw_errno(env, "getsockopt", errno);
    return NULL;
  }
  if (type != SOCK_DGRAM || (domain != AF_INET && domain != AF_INET6)) {
    throw_errno(env, "udpProxyOpen", ENOTSOCK);
    return NULL;
  }
  if (getsockname(fd, &bound.sa, &bound_len) < 0) {
    throw_errno(env, "getsockname", errno);
    return NULL;
  }
  if ((domain == AF_INET && setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0) ||
      (domain == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) < 0)) {
    throw_errno(env, "setsockopt(PKTINFO)", errno);
    return NULL;
  }
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) < 0) seed = (uint32_t)(uintptr_t)&seed ^ (uint32_t)getpid();

  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  p = calloc(1, sizeof *p);
  if (p == NULL) {
    throw_errno(env, "calloc", ENOMEM);
    return NULL;
  }
  p->loop = loop;
  handle_init(&p->h, env, udp_proxy_on_env_gone);
  p->fd = -1;
  p->netns_fd = -1;
  p->family = domain;
  p->port = domain == AF_INET ? bound.in4.sin_port : bound.in6.sin6_port;
  p->bound = bound;
  p->bound_specific = domain == AF_INET ? bound.in4.sin_addr.s_addr != htonl(INADDR_ANY) : !IN6_IS_ADDR_UNSPECIFIED(&bound.in6.sin6_addr);
  p->queue_max = (uint32_t)queue_max;
  p->queue_bytes_max = (size_t)queue_bytes;
  p->proxy_v2 = proxy_v2;
  p->poll.data = p;
  p->timer.data = p;
  rc = udp_flows_init(&p->flows, (size_t)max_flows, (uint64_t)timeout_ms, seed);
  p->bufs = rc < 0 ? NULL : malloc((size_t)BATCH * DGRAM_MAX);
  if (rc < 0 || p->bufs == NULL) {
    udp_flows_free(&p->flows);
    free(p->bufs);
    free(p);
    throw_errno(env, "malloc", ENOMEM);
    return NULL;
  }
  if (napi_create_object(env, &handle) != napi_ok || napi_wrap(env, handle, p, udp_proxy_finalize, NULL, NULL) != napi_ok) {
    udp_flows_free(&p->flows);
    free(p->bufs);
    free(p);
    NAPI_CALL(env, napi_generic_failure);
  }
  /* From here the wrapper owns p: failures go through udp_proxy_shutdown, which leaves fd to the caller
   * as long as p->fd is -1. */
  if (handle_js_take(&p->h, argv[6], handle, "PodsockUdpProxy") < 0) {
    udp_proxy_shutdown(p, true);
    NAPI_CALL(env, napi_generic_failure);
  }
  rc = uv_poll_init(p->loop, &p->poll, fd);
  if (rc < 0) {
    udp_proxy_shutdown(p, true);
    throw_errno(env, "uv_poll_init", -rc);
    return NULL;
  }
  p->poll_init = true;
  handle_ref(&p->h);
  uv_timer_init(p->loop, &p->timer);
  uv_unref((uv_handle_t *)&p->timer); /* the listening poll keeps the loop alive, not the timer */
  p->timer_init = true;
  handle_ref(&p->h);
  handle_hook(&p->h);
  rc = uv_poll_start(&p->poll, UV_READABLE, on_readable);
  if (rc < 0) {
    udp_proxy_shutdown(p, true);
    throw_errno(env, "uv_poll_start", -rc);
    return NULL;
  }
  p->fd = fd;
  return handle;
}

/* udpProxySetTarget(handle, host, port, netnsFd): the backend is `host` (numeric IPv4 or IPv6):`port`,
 * reached from the network namespace netnsFd (dup'ed; -1: podsock's own). Existing flows close (they were
 * connected to the old target); the queue is delivered in order, then datagrams go straight through. */
static napi_value js_udp_proxy_set_target(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  char host[STRING_ARG_MAX];
  size_t host_len;
  int32_t port, nsfd;
  udp_addr_t target;
  udp_proxy_t *p;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || (p = unwrap_udp_proxy(env, argv[0])) == NULL || arg_string(env, argv[1], "udpProxySetTarget", host, sizeof host, &host_len) < 0 ||
      arg_int32(env, argv[2], "port", &port) < 0 || arg_int32(env, argv[3], "netnsFd", &nsfd) < 0)
    return NULL;
  memset(&target, 0, sizeof target);
  if (port < 1 || port > 65535 ||
      (uv_ip4_addr(host, port, &target.in4) != 0 && uv_ip6_addr(host, port, &target.in6) != 0)) {
    throw_errno(env, "udpProxySetTarget", EINVAL);
    return NULL;
  }
  if (p->closed) {
    throw_errno(env, "udpProxySetTarget", EBADF);
    return NULL;
  }
  int dup = -1;
  if (nsfd >= 0 && (dup = fcntl(nsfd, F_DUPFD_CLOEXEC, 3)) < 0) {
    throw_errno(env, "fcntl(F_DUPFD_CLOEXEC)", errno);
    return NULL;
  }
  flows_close_all(p);
  if (p->netns_fd >= 0) close(p->netns_fd);
  p->netns_fd = dup;
  p->target = target;
  p->target_len = target.sa.sa_family == AF_INET ? sizeof target.in4 : sizeof target.in6;
  p->has_target = true;
  queue_flush(p);
  p->report_pending = true; /* reported from the loop, never from inside this call */
  timer_rearm(p);
  return NULL;
}

/* udpProxyUnsetTarget(handle): the backend is gone (stopped, restarting): close every flow, queue again. */
static napi_value js_udp_proxy_unset_target(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  udp_proxy_t *p;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || (p = unwrap_udp_proxy(env, argv[0])) == NULL) return NULL;
  if (p->closed) return NULL;
  flows_close_all(p);
  p->has_target = false;
  if (p->netns_fd >= 0) close(p->netns_fd);
  p->netns_fd = -1;
  p->report_pending = true;
  timer_rearm(p);
  return NULL;
}

/* udpProxyInfo(handle) -> the counters. */
static napi_value js_udp_proxy_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], obj, v;
  udp_proxy_t *p;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || (p = unwrap_udp_proxy(env, argv[0])) == NULL) return NULL;
  NAPI_CALL(env, napi_create_object(env, &obj));
  NAPI_CALL(env, napi_get_boolean(env, !p->closed && !p->stopped, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, "active", v));
  NAPI_CALL(env, napi_get_boolean(env, p->has_target, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, "hasTarget", v));
  set_num(env, obj, "flows", (double)p->flows.count);
  set_num(env, obj, "queued", (double)p->q_count);
  set_num(env, obj, "queuedBytes", (double)p->q_bytes);
  set_num(env, obj, "dropped", (double)p->c.dropped);
  set_num(env, obj, "evicted", (double)p->c.evicted);
  set_num(env, obj, "expired", (double)p->c.expired);
  set_num(env, obj, "truncated", (double)p->c.truncated);
  set_num(env, obj, "refused", (double)p->c.refused);
  set_num(env, obj, "failed", (double)p->c.failed);
  set_num(env, obj, "datagramsIn", (double)p->c.datagrams_in);
  set_num(env, obj, "datagramsOut", (double)p->c.datagrams_out);
  set_num(env, obj, "bytesIn", (double)p->c.bytes_in);
  set_num(env, obj, "bytesOut", (double)p->c.bytes_out);
  return obj;
}

/* udpProxyClose(handle): close every fd the engine owns. Idempotent; callable from onEvent. */
static napi_value js_udp_proxy_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  udp_proxy_t *p;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || (p = unwrap_udp_proxy(env, argv[0])) == NULL) return NULL;
  udp_proxy_shutdown(p, true);
  return NULL;
}

napi_status podsock_udp_proxy_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"udpProxyOpen", NULL, js_udp_proxy_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpProxySetTarget", NULL, js_udp_proxy_set_target, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpProxyUnsetTarget", NULL, js_udp_proxy_unset_target, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpProxyInfo", NULL, js_udp_proxy_info, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpProxyClose", NULL, js_udp_proxy_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
