/* PROXY protocol v2 headers for datagrams (proxy-v2.h). */
#include "proxy-v2.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

/* Section 2.2: "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A". */
static const uint8_t SIGNATURE[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

enum {
  CMD_LOCAL = 0x20,  /* version 2 (high nibble), command LOCAL */
  CMD_PROXY = 0x21,  /* version 2, command PROXY */
  FAM_UNSPEC = 0x00,
  FAM_UDP4 = 0x12,   /* AF_INET (0x1) << 4 | DGRAM (0x2) */
  FAM_UDP6 = 0x22,   /* AF_INET6 (0x2) << 4 | DGRAM */
};

/* One endpoint as 16 bytes of IPv6, or 4 of IPv4 (is4), and a port in network order. */
typedef struct {
  uint8_t addr[16];
  uint16_t port;
  int is4;
} endpoint_t;

static const uint8_t V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int endpoint_of(const struct sockaddr *sa, endpoint_t *e) {
  memset(e, 0, sizeof *e);
  if (sa == NULL) return -1;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    memcpy(e->addr, &a->sin_addr, 4);
    e->port = a->sin_port;
    e->is4 = 1;
    return 0;
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    e->port = a->sin6_port;
    if (memcmp(&a->sin6_addr, V4_MAPPED, sizeof V4_MAPPED) == 0) {
      memcpy(e->addr, (const uint8_t *)&a->sin6_addr + 12, 4);
      e->is4 = 1;
    } else {
      memcpy(e->addr, &a->sin6_addr, 16);
    }
    return 0;
  }
  return -1;
}

/* An IPv4 endpoint as ::ffff:a.b.c.d. */
static void endpoint_map(endpoint_t *e) {
  if (!e->is4) return;
  uint8_t v4[4];
  memcpy(v4, e->addr, 4);
  memcpy(e->addr, V4_MAPPED, 12);
  memcpy(e->addr + 12, v4, 4);
  e->is4 = 0;
}

int proxy_v2_dgram(uint8_t *out, size_t cap, const struct sockaddr *src, const struct sockaddr *dst) {
  endpoint_t s, d;
  size_t alen;
  if (cap < 16) return -ENOSPC;
  memcpy(out, SIGNATURE, sizeof SIGNATURE);
  if (endpoint_of(src, &s) < 0 || endpoint_of(dst, &d) < 0) {
    out[12] = CMD_LOCAL;
    out[13] = FAM_UNSPEC;
    out[14] = 0;
    out[15] = 0;
    return 16;
  }
  if (s.is4 != d.is4) {
    endpoint_map(&s);
    endpoint_map(&d);
  }
  alen = s.is4 ? 12 : 36;
  if (cap < 16 + alen) return -ENOSPC;
  out[12] = CMD_PROXY;
  out[13] = s.is4 ? FAM_UDP4 : FAM_UDP6;
  out[14] = 0;
  out[15] = (uint8_t)alen;
  /* Addresses then ports, each in network byte order (section 2.2, struct proxy_hdr_v2's ipv4/ipv6). */
  size_t n = s.is4 ? 4 : 16;
  memcpy(out + 16, s.addr, n);
  memcpy(out + 16 + n, d.addr, n);
  memcpy(out + 16 + 2 * n, &s.port, 2);
  memcpy(out + 16 + 2 * n + 2, &d.port, 2);
  return (int)(16 + alen);
}
