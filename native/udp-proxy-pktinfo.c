/*
 * The UDP proxy's ancillary data (udp-proxy.h): the local address a client's datagram arrived at, from
 * IP_PKTINFO / IPV6_PKTINFO (ip(7), ipv6(7)), and the control message that makes its reply leave from
 * that address.
 */
#include "udp-proxy.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

void udp_proxy_local_from_control(const udp_proxy_t *p, struct msghdr *mh, local_t *l) {
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
size_t udp_proxy_reply_control(const udp_proxy_t *p, const local_t *l, char *buf) {
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
