/*
 * The UDP benchmark's floor for a user-space proxy (udp.ts, variant "relay"): the least a process can do
 * to forward datagrams by flow, with nothing else. One thread, one epoll set; the listening socket on
 * 127.0.0.1 in the host's network namespace; per client address an upstream socket created inside the
 * container's network namespace and connected to the backend (as podsock does as root); recvmmsg(2)
 * batches in both directions, one send(2) per datagram upstream and one sendmmsg(2) per batch of
 * replies. No expiry, no limits, no queue before the backend is up, no PROXY header, no counters: it is
 * an anchor for the benchmark, not a proxy to deploy.
 *
 *   udp-relay LISTEN_PORT NETNS_PATH TARGET_IPV4 TARGET_PORT
 *
 * Prints "ready" once listening. Needs CAP_SYS_ADMIN for setns(2) (rootful podman, as the benchmark).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 16
#define FLOWS_MAX 4096
#define DGRAM_MAX 65536

struct flow {
  struct sockaddr_in client;
  int fd;
};

static struct flow flows[FLOWS_MAX];
static int nflows;
static char bufs[BATCH][DGRAM_MAX];

static void die(const char *what) {
  perror(what);
  exit(1);
}

static int flow_for(const struct sockaddr_in *c, const struct sockaddr_in *target, int ep) {
  for (int i = 0; i < nflows; i++)
    if (flows[i].client.sin_port == c->sin_port && flows[i].client.sin_addr.s_addr == c->sin_addr.s_addr) return i;
  if (nflows == FLOWS_MAX) return -1;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (const struct sockaddr *)target, sizeof *target) < 0) die("upstream socket");
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)nflows + 1};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  flows[nflows].client = *c;
  flows[nflows].fd = fd;
  return nflows++;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: udp-relay LISTEN_PORT NETNS_PATH TARGET_IPV4 TARGET_PORT\n");
    return 2;
  }
  struct sockaddr_in listen_at = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  struct sockaddr_in target = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[4]))};
  inet_pton(AF_INET, "127.0.0.1", &listen_at.sin_addr);
  if (inet_pton(AF_INET, argv[3], &target.sin_addr) != 1) die("target address");
  int lfd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&listen_at, sizeof listen_at) < 0) die("listen");
  /* Every socket made from here on lives in the container's network namespace; lfd stays in ours. */
  int ns = open(argv[2], O_RDONLY | O_CLOEXEC);
  if (ns < 0 || setns(ns, CLONE_NEWNET) < 0) die("setns");
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.u32 = 0};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) die("epoll");
  printf("ready\n");
  fflush(stdout);

  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in names[BATCH];
  struct epoll_event events[64];
  for (;;) {
    int ne = epoll_wait(ep, events, 64, -1);
    for (int e = 0; e < ne; e++) {
      uint32_t id = events[e].data.u32;
      for (int i = 0; i < BATCH; i++) {
        iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = DGRAM_MAX};
        msgs[i].msg_hdr = (struct msghdr){.msg_name = &names[i], .msg_namelen = sizeof names[i], .msg_iov = &iov[i], .msg_iovlen = 1};
      }
      if (id == 0) {
        int n = recvmmsg(lfd, msgs, BATCH, MSG_DONTWAIT, NULL);
        for (int i = 0; i < n; i++) {
          int f = flow_for(&names[i], &target, ep);
          if (f >= 0) (void)!send(flows[f].fd, bufs[i], msgs[i].msg_len, MSG_DONTWAIT);
        }
      } else {
        struct flow *fl = &flows[id - 1];
        int n = recvmmsg(fl->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        for (int i = 0; i < n; i++) {
          iov[i].iov_len = msgs[i].msg_len;
          msgs[i].msg_hdr = (struct msghdr){.msg_name = &fl->client, .msg_namelen = sizeof fl->client, .msg_iov = &iov[i], .msg_iovlen = 1};
        }
        if (n > 0) (void)!sendmmsg(lfd, msgs, (unsigned)n, MSG_DONTWAIT);
      }
    }
  }
}
