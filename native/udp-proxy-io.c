/*
 * The UDP proxy's data path (udp-proxy.h): datagrams from clients on the listening socket, read in
 * batches with recvmmsg(2), go to their client's flow (opened on the first one, in the target's network
 * namespace) or, before the target is known, to the bounded queue; replies on a flow's socket go back to
 * its client from the listening socket with sendmmsg(2).
 */
#include "udp-proxy.h"
#include "netns.h"
#include "proxy-v2.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void flow_on_closed(uv_handle_t *h) {
  flow_t *fl = h->data;
  udp_proxy_t *p = fl->p;
  free(fl);
  handle_unref(&p->h);
}

/* Close a flow that is no longer in the table: its socket now, its memory in the poll's close callback. */
void udp_proxy_flow_close(flow_t *fl) {
  udp_proxy_retry_unlink(fl);
  udp_proxy_kept_free(fl);
  uv_poll_stop(&fl->poll);
  close(fl->fd);
  fl->fd = -1;
  uv_close((uv_handle_t *)&fl->poll, flow_on_closed);
}

void udp_proxy_flows_close_all(udp_proxy_t *p) {
  udp_flow_t *f;
  while ((f = udp_flows_pop(&p->flows)) != NULL) udp_proxy_flow_close((flow_t *)f);
}

/* Send one datagram upstream, behind a PROXY v2 header when asked. 0 or a negative errno. */
int udp_proxy_flow_send(flow_t *fl, const udp_addr_t *client, const local_t *local, const uint8_t *data, size_t len) {
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
    udp_proxy_flow_close((flow_t *)evicted);
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
  int rc = udp_proxy_flow_send(fl, client, local, data, len);
  if (rc == -EDESTADDRREQ || rc == -ENOTCONN) {
    /* The flow's socket is connected no more: SOCK_DESTROY (sock_diag(7), `ss -K`) disconnects it
     * (net/ipv4/udp.c udp_abort()). Kept, it would lose every datagram of a client that keeps talking
     * (and so never expires): this one goes through a new flow. */
    udp_flows_remove(&p->flows, &fl->f);
    udp_proxy_flow_close(fl);
    if (flow_open(p, client, now, &fl) < 0) {
      p->c.failed++;
      return;
    }
    fl->local = *local;
    rc = udp_proxy_flow_send(fl, client, local, data, len);
  }
  if (rc == -ECONNREFUSED) {
    /* An earlier datagram was refused; the error was reported instead of sending this one. */
    udp_proxy_flow_keep(fl, data, len, now);
    udp_proxy_flow_refused(fl, now);
    if (fl->replied && udp_proxy_flow_send(fl, client, local, data, len) < 0) p->c.failed++;
    return;
  }
  if (rc < 0) {
    p->c.failed++;
    return;
  }
  udp_proxy_flow_keep(fl, data, len, now);
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

void udp_proxy_queue_free(udp_proxy_t *p) {
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
void udp_proxy_queue_flush(udp_proxy_t *p) {
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
void udp_proxy_on_readable(uv_poll_t *h, int status, int events) {
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
      udp_proxy_stop(p, "getsockopt(SO_ERROR)", errno);
      return;
    }
    uv_poll_start(&p->poll, UV_READABLE, udp_proxy_on_readable);
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
      /* Only an error that every later read would repeat stops the engine. Anything else is EAGAIN,
       * a shortage (ENOMEM, ENOBUFS), or the socket's pending error, which a read returns once and
       * clears as SO_ERROR does in the POLLERR branch above (ECONNREFUSED; ECONNABORTED from
       * SOCK_DESTROY, sock_diag(7), net/ipv4/udp.c udp_abort(), after which a socket bound to its port
       * receives on): the datagrams behind it are read at the next wake-up. */
      if (errno == EBADF || errno == ENOTSOCK || errno == EFAULT || errno == EINVAL || errno == EOPNOTSUPP)
        udp_proxy_stop(p, "recvmmsg", errno);
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
      udp_proxy_local_from_control(p, mh, &local);
      if (p->has_target) deliver(p, &names[i], &local, iov[i].iov_base, len, now);
      else queue_push(p, &names[i], &local, iov[i].iov_base, len);
    }
    if (n < BATCH) break;
  }
  udp_proxy_report(p);
  if (!p->closed) udp_proxy_timer_rearm(p);
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
    if (getsockopt(fl->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == ECONNREFUSED) udp_proxy_flow_refused(fl, now);
    uv_poll_start(&fl->poll, UV_READABLE, flow_on_readable);
    goto done;
  }
  size_t control_len = udp_proxy_reply_control(p, &fl->local, control);
  for (int round = 0; round < WAKE_BATCHES; round++) {
    for (int i = 0; i < BATCH; i++) {
      iov[i] = (struct iovec){.iov_base = p->bufs + (size_t)i * DGRAM_MAX, .iov_len = DGRAM_MAX};
      in[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
    }
    int n = recvmmsg(fl->fd, in, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNREFUSED) {
        udp_proxy_flow_refused(fl, now);
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
      udp_proxy_retry_unlink(fl);
      udp_proxy_kept_free(fl);
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
  udp_proxy_report(p);
  if (!p->closed) udp_proxy_timer_rearm(p);
}
