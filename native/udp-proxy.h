/*
 * The UDP proxy engine: proxy mode's data path for a datagram socket (ListenDatagram=), on uv_polls of
 * Node's own loop, with no call into JS per datagram. What its files share (as libuv's internal.h is by
 * src/unix/): udp-proxy.c (the JS entry points udpProxyOpen, SetTarget, UnsetTarget, Info and Close, the
 * life cycle, and the events to JS), udp-proxy-io.c (the data path: the listening socket's reads, flows
 * opened, sent on and answered from, the queue before the target is known), udp-proxy-timer.c (expiry,
 * the resending after ICMP port unreachable, deferred reports) and udp-proxy-pktinfo.c (the ancillary
 * data that says where a datagram arrived and where its reply leaves from).
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
#ifndef PODSOCK_UDP_PROXY_H
#define PODSOCK_UDP_PROXY_H

#include "handle.h"
#include "udp-flows.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
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

/* Room for the ancillary data of one received datagram or one reply (udp-proxy-pktinfo.c). */
#define CONTROL_MAX 128

/* Everything lost so far: what the drop event reports. */
static inline uint64_t udp_proxy_drops_total(const udp_proxy_t *p) {
  return p->c.dropped + p->c.truncated + p->c.failed;
}

/* udp-proxy.c: events to JS. */

/* At the end of each loop callback: a count event when the flows or the queue's emptiness changed, a
 * drop event when the drops did (at most one per DROP_EVENT_MS; a later one is armed on the timer). */
void udp_proxy_report(udp_proxy_t *p);
/* Receiving on the listening socket failed for good: stop reading and send the error event. */
void udp_proxy_stop(udp_proxy_t *p, const char *syscall, int err);

/* udp-proxy-io.c: the data path. */

/* The listening socket's poll callback: datagrams from clients go to their flows, or to the queue
 * while there is no target. */
void udp_proxy_on_readable(uv_poll_t *h, int status, int events);
/* Send one datagram upstream on `fl`, behind a PROXY v2 header when asked. 0 or a negative errno. */
int udp_proxy_flow_send(flow_t *fl, const udp_addr_t *client, const local_t *local, const uint8_t *data, size_t len);
/* Close a flow that is no longer in the table: its socket now, its memory in the poll's close callback. */
void udp_proxy_flow_close(flow_t *fl);
/* Take every flow out of the table and close it. */
void udp_proxy_flows_close_all(udp_proxy_t *p);
/* Deliver the queue in arrival order (the target was just set). */
void udp_proxy_queue_flush(udp_proxy_t *p);
/* Drop the queue. */
void udp_proxy_queue_free(udp_proxy_t *p);

/* udp-proxy-timer.c: expiry, resending, deferred reports. */

/* Make the timer fire at `due` at the latest. */
void udp_proxy_timer_arm(udp_proxy_t *p, uint64_t due);
/* Arm the timer for the next expiry, the next resend, and a pending report. */
void udp_proxy_timer_rearm(udp_proxy_t *p);
/* Keep a copy of a datagram sent to a backend that has not answered yet (bounded). */
void udp_proxy_flow_keep(flow_t *fl, const uint8_t *data, size_t len, uint64_t now);
/* The backend refused (ICMP port unreachable): resend later while the flow has had no reply and is in
 * its window, else only count it. */
void udp_proxy_flow_refused(flow_t *fl, uint64_t now);
/* Free what a flow keeps for resending. */
void udp_proxy_kept_free(flow_t *fl);
/* Take a flow off the retry list (if on it). */
void udp_proxy_retry_unlink(flow_t *fl);

/* udp-proxy-pktinfo.c: ancillary data. */

/* Where a received datagram arrived (from its IP_PKTINFO / IPV6_PKTINFO, or the socket's own address). */
void udp_proxy_local_from_control(const udp_proxy_t *p, struct msghdr *mh, local_t *l);
/* Build into `buf` (CONTROL_MAX bytes) the control message that makes a reply leave from `l`; its
 * length, 0 for none. */
size_t udp_proxy_reply_control(const udp_proxy_t *p, const local_t *l, char *buf);

#endif
