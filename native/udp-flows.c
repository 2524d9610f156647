/*
 * The UDP proxy's flow table (udp-flows.h): a chained hash on the client address, seeded, and an
 * intrusive doubly linked list in least-recently-active order, so that finding, touching, evicting the
 * least recently active flow and expiring idle ones are all O(1) per flow.
 */
#include "udp-flows.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int udp_addr_valid(const struct sockaddr *addr) {
  return addr != NULL && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6);
}

/* FNV-1a over the bytes that make the key, started from the table's seed. */
static uint32_t hash_bytes(uint32_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 16777619u;
  }
  return h;
}

static uint32_t addr_hash(uint32_t seed, const struct sockaddr *addr) {
  uint32_t h = hash_bytes(2166136261u ^ seed, &addr->sa_family, sizeof addr->sa_family);
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
    h = hash_bytes(h, &a->sin_addr, sizeof a->sin_addr);
    h = hash_bytes(h, &a->sin_port, sizeof a->sin_port);
  } else {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
    h = hash_bytes(h, &a->sin6_addr, sizeof a->sin6_addr);
    h = hash_bytes(h, &a->sin6_port, sizeof a->sin6_port);
    h = hash_bytes(h, &a->sin6_scope_id, sizeof a->sin6_scope_id);
  }
  /* A final mix so that the low bits (the bucket) depend on every byte. */
  h ^= h >> 16;
  h *= 0x45d9f3bu;
  h ^= h >> 16;
  return h;
}

static int addr_equal(const udp_addr_t *key, const struct sockaddr *addr) {
  if (key->sa.sa_family != addr->sa_family) return 0;
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
    return key->in4.sin_port == a->sin_port && key->in4.sin_addr.s_addr == a->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
  return key->in6.sin6_port == a->sin6_port && key->in6.sin6_scope_id == a->sin6_scope_id &&
         memcmp(&key->in6.sin6_addr, &a->sin6_addr, sizeof a->sin6_addr) == 0;
}

int udp_flows_init(udp_flows_t *t, size_t max_flows, uint64_t timeout_ms, uint32_t seed) {
  memset(t, 0, sizeof *t);
  if (max_flows < 1 || max_flows > UDP_FLOWS_MAX || timeout_ms < 1) return -EINVAL;
  size_t n = 1;
  while (n < max_flows) n <<= 1; /* a load factor of at most 1 */
  t->buckets = calloc(n, sizeof *t->buckets);
  if (t->buckets == NULL) return -ENOMEM;
  t->mask = (uint32_t)(n - 1);
  t->seed = seed;
  t->max = max_flows;
  t->timeout_ms = timeout_ms;
  return 0;
}

void udp_flows_free(udp_flows_t *t) {
  free(t->buckets);
  t->buckets = NULL;
  t->count = 0;
  t->oldest = t->newest = NULL;
}

udp_flow_t *udp_flows_find(const udp_flows_t *t, const struct sockaddr *addr) {
  if (!udp_addr_valid(addr) || t->buckets == NULL) return NULL;
  uint32_t h = addr_hash(t->seed, addr);
  for (udp_flow_t *f = t->buckets[h & t->mask]; f != NULL; f = f->chain)
    if (f->hash == h && addr_equal(&f->client, addr)) return f;
  return NULL;
}

static void list_unlink(udp_flows_t *t, udp_flow_t *f) {
  if (f->older != NULL) f->older->newer = f->newer;
  else t->oldest = f->newer;
  if (f->newer != NULL) f->newer->older = f->older;
  else t->newest = f->older;
  f->older = f->newer = NULL;
}

static void list_append(udp_flows_t *t, udp_flow_t *f) {
  f->older = t->newest;
  f->newer = NULL;
  if (t->newest != NULL) t->newest->newer = f;
  else t->oldest = f;
  t->newest = f;
}

void udp_flows_remove(udp_flows_t *t, udp_flow_t *flow) {
  udp_flow_t **p = &t->buckets[flow->hash & t->mask];
  while (*p != NULL && *p != flow) p = &(*p)->chain;
  if (*p == NULL) return; /* not in the table */
  *p = flow->chain;
  flow->chain = NULL;
  list_unlink(t, flow);
  t->count--;
}

udp_flow_t *udp_flows_pop(udp_flows_t *t) {
  udp_flow_t *f = t->oldest;
  if (f != NULL) udp_flows_remove(t, f);
  return f;
}

udp_flow_t *udp_flows_insert(udp_flows_t *t, udp_flow_t *flow, const struct sockaddr *addr, uint64_t now_ms) {
  udp_flow_t *evicted = t->count >= t->max ? udp_flows_pop(t) : NULL;
  memset(&flow->client, 0, sizeof flow->client);
  if (addr->sa_family == AF_INET) flow->client.in4 = *(const struct sockaddr_in *)addr;
  else flow->client.in6 = *(const struct sockaddr_in6 *)addr;
  flow->hash = addr_hash(t->seed, addr);
  flow->last_ms = now_ms;
  flow->chain = t->buckets[flow->hash & t->mask];
  t->buckets[flow->hash & t->mask] = flow;
  list_append(t, flow);
  t->count++;
  return evicted;
}

void udp_flows_touch(udp_flows_t *t, udp_flow_t *flow, uint64_t now_ms) {
  /* A clock that goes back (it should not) must not reorder the list against its time stamps. */
  if (now_ms > flow->last_ms) flow->last_ms = now_ms;
  if (t->newest == flow) return;
  list_unlink(t, flow);
  list_append(t, flow);
}

udp_flow_t *udp_flows_expire(udp_flows_t *t, uint64_t now_ms) {
  udp_flow_t *f = t->oldest;
  if (f == NULL || now_ms < f->last_ms || now_ms - f->last_ms < t->timeout_ms) return NULL;
  udp_flows_remove(t, f);
  return f;
}

uint64_t udp_flows_next_expiry(const udp_flows_t *t) {
  return t->oldest == NULL ? UINT64_MAX : t->oldest->last_ms + t->timeout_ms;
}
