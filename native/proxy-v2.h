/*
 * A PROXY protocol version 2 header for one datagram (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt,
 * section 2.2): the 12-byte signature, the version and command byte, the address family and transport
 * byte (DGRAM), the length of the addresses, then the addresses. Pure: no system calls.
 */
#ifndef PODSOCK_PROXY_V2_H
#define PODSOCK_PROXY_V2_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest header encoded here: 16 bytes, then two IPv6 addresses and two ports (36). */
#define PROXY_V2_MAX 52

/*
 * Encode into `out` (room for `cap` bytes) the header for a datagram from `src` (the client) to `dst`
 * (the local address it was sent to), each a sockaddr_in or sockaddr_in6, and return its length.
 * IPv4: PROXY, UDP over IPv4 (0x21 0x12), 12 bytes of addresses; IPv6: 0x21 0x22, 36 bytes. An IPv4
 * client on a dual-stack socket (::ffff:a.b.c.d) is encoded as IPv4 with both addresses unmapped; when
 * the two still differ in family, the IPv4 one is mapped into IPv6. A missing address (NULL, or not
 * AF_INET/AF_INET6) gives the LOCAL command with family UNSPEC and no addresses (0x20 0x00, length 0),
 * which tells the receiver to use the real endpoints. -ENOSPC when `cap` is too small.
 */
int proxy_v2_dgram(uint8_t *out, size_t cap, const struct sockaddr *src, const struct sockaddr *dst);

#endif
