/*
 * The UDP proxy's timer (udp-proxy.h): one uv_timer_t per engine, armed for the earliest of the next
 * flow expiry, the next resend of a flow whose backend refused (ICMP port unreachable, udp(7)) before it
 * ever answered, and a report that could not be made from a loop callback or had to wait (drop events
 * are rate-limited).
 */
#include "udp-proxy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void udp_proxy_kept_free(flow_t *fl) {
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

void udp_proxy_retry_unlink(flow_t *fl) {
  if (!fl->retrying) return;
  if (fl->retry_prev != NULL) fl->retry_prev->retry_next = fl->retry_next;
  else fl->p->retry_head = fl->retry_next;
  if (fl->retry_next != NULL) fl->retry_next->retry_prev = fl->retry_prev;
  fl->retry_prev = fl->retry_next = NULL;
  fl->retrying = false;
}

/* Keep a copy of a datagram sent to a backend that has not answered yet (bounded). */
void udp_proxy_flow_keep(flow_t *fl, const uint8_t *data, size_t len, uint64_t now) {
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
void udp_proxy_flow_refused(flow_t *fl, uint64_t now) {
  udp_proxy_t *p = fl->p;
  p->c.refused++;
  if (fl->replied || now - fl->first_ms >= RETRY_WINDOW_MS || fl->kept == NULL) {
    udp_proxy_kept_free(fl);
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

/* Resend what a flow keeps (its retry is due). */
static void flow_retry(flow_t *fl, uint64_t now) {
  udp_proxy_retry_unlink(fl);
  if (fl->replied || now - fl->first_ms >= RETRY_WINDOW_MS) {
    udp_proxy_kept_free(fl);
    return;
  }
  for (packet_t *k = fl->kept; k != NULL; k = k->next) {
    int rc = udp_proxy_flow_send(fl, &fl->f.client, &fl->local, k->data, k->len);
    if (rc == -ECONNREFUSED) {
      udp_proxy_flow_refused(fl, now);
      return;
    }
  }
}

static void on_timer(uv_timer_t *t);

/* Make the timer fire at `due` at the latest. */
void udp_proxy_timer_arm(udp_proxy_t *p, uint64_t due) {
  if (p->closed || !p->timer_init || due == UINT64_MAX) return;
  if (p->timer_armed && p->timer_due <= due) return;
  uint64_t now = uv_now(p->loop);
  p->timer_armed = true;
  p->timer_due = due;
  uv_timer_start(&p->timer, on_timer, due > now ? due - now : 0, 0);
}

/* Arm the timer for the next expiry and the next retry. */
void udp_proxy_timer_rearm(udp_proxy_t *p) {
  uint64_t due = udp_flows_next_expiry(&p->flows);
  for (flow_t *fl = p->retry_head; fl != NULL; fl = fl->retry_next)
    if (fl->retry_at < due) due = fl->retry_at;
  if (p->report_pending) due = uv_now(p->loop);
  udp_proxy_timer_arm(p, due);
}

static void on_timer(uv_timer_t *t) {
  udp_proxy_t *p = t->data;
  uint64_t now = uv_now(p->loop);
  udp_flow_t *f;
  p->timer_armed = false;
  if (p->closed) return;
  while ((f = udp_flows_expire(&p->flows, now)) != NULL) {
    p->c.expired++;
    udp_proxy_flow_close((flow_t *)f);
  }
  for (flow_t *fl = p->retry_head, *next; fl != NULL; fl = next) {
    next = fl->retry_next;
    if (fl->retry_at <= now) flow_retry(fl, now);
  }
  udp_proxy_report(p);
  if (!p->closed) udp_proxy_timer_rearm(p);
}
