/*
 * The UDP proxy's flow table (udp-proxy.c): one flow per client address, found by a hash of the address,
 * kept in least-recently-active order. Pure: no Node-API, no system calls, no clock of its own (every
 * operation that needs the time takes `now_ms`), and no allocation after udp_flows_init(): the caller
 * allocates each flow (a struct that embeds udp_flow_t as its first member) and gets back every flow the
 * table lets go of (evicted or expired), so the number of flows a peer can make the caller hold is
 * max_flows, plus the one being inserted.
 */
#ifndef PODSOCK_UDP_FLOWS_H
#define PODSOCK_UDP_FLOWS_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The most flows a table may be made for: each is an open socket, and the hash is sized for it. */
#define UDP_FLOWS_MAX 65536

/* A client address: sockaddr_in or sockaddr_in6 as recvmsg(2) gave it. */
typedef union {
  struct sockaddr sa;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
} udp_addr_t;

typedef struct udp_flow udp_flow_t;
struct udp_flow {
  udp_addr_t client;    /* the key: family, address, port (and the scope id for IPv6) */
  uint64_t last_ms;     /* the last traffic in either direction */
  uint32_t hash;
  udp_flow_t *chain;    /* the next flow in the same hash bucket */
  udp_flow_t *older;    /* least-recently-active order: toward the oldest... */
  udp_flow_t *newer;    /* ...and toward the newest */
};

typedef struct {
  udp_flow_t **buckets;
  uint32_t mask;        /* bucket count - 1 (a power of two) */
  uint32_t seed;        /* mixed into the hash, so that a peer cannot pick colliding addresses */
  size_t count, max;
  uint64_t timeout_ms;
  udp_flow_t *oldest, *newest;
} udp_flows_t;

/* Make an empty table for at most `max_flows` (1 to UDP_FLOWS_MAX) flows that expire after `timeout_ms`
 * (>= 1) without traffic. 0, -EINVAL or -ENOMEM. */
int udp_flows_init(udp_flows_t *t, size_t max_flows, uint64_t timeout_ms, uint32_t seed);

/* Release the table's own memory (not the flows: take them out with udp_flows_pop first). */
void udp_flows_free(udp_flows_t *t);

/* Whether `addr` is a client address a flow can be keyed by (AF_INET or AF_INET6). */
int udp_addr_valid(const struct sockaddr *addr);

/* The flow of client address `addr`, or NULL. Does not count as traffic. */
udp_flow_t *udp_flows_find(const udp_flows_t *t, const struct sockaddr *addr);

/* Add `flow` for client address `addr` (copied into flow->client; no flow of that address may be in the
 * table) as the most recently active. When the table is full, the least recently active flow is taken
 * out first and returned for the caller to close and free; otherwise NULL. */
udp_flow_t *udp_flows_insert(udp_flows_t *t, udp_flow_t *flow, const struct sockaddr *addr, uint64_t now_ms);

/* Traffic on `flow` (either direction): it becomes the most recently active. */
void udp_flows_touch(udp_flows_t *t, udp_flow_t *flow, uint64_t now_ms);

/* Take `flow` out of the table. */
void udp_flows_remove(udp_flows_t *t, udp_flow_t *flow);

/* Take out and return the least recently active flow if it has been idle for >= timeout_ms at now_ms,
 * else NULL: call until NULL to expire every such flow. */
udp_flow_t *udp_flows_expire(udp_flows_t *t, uint64_t now_ms);

/* Take out and return the least recently active flow, or NULL when the table is empty. */
udp_flow_t *udp_flows_pop(udp_flows_t *t);

/* When the next flow expires (the oldest's last traffic + timeout), or UINT64_MAX with no flows. */
uint64_t udp_flows_next_expiry(const udp_flows_t *t);

#endif
