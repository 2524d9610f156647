/*
 * A driver for native/udp-flows.c and native/proxy-v2.c, built by udp-flows.test.ts with the sanitizers:
 * one command per line on stdin, one answer per line on stdout. Addresses are written a.b.c.d:port or
 * [v6%scope]:port; a flow is named by its address.
 *
 *   init MAX TIMEOUT        -> ok | err ERRNO
 *   insert ADDR NOW         -> ok | evicted ADDR
 *   find ADDR               -> found ADDR LAST | none
 *   touch ADDR NOW          -> ok | none
 *   remove ADDR             -> ok | none
 *   expire NOW              -> expired [ADDR...]
 *   next                    -> NOW | none
 *   count                   -> N
 *   fill N NOW              -> evicted N   (N inserts of 10.x.y.z:1 at NOW)
 *   v2 SRC|- DST|- [CAP]    -> HEX | err ERRNO
 *   free                    -> ok          (every flow taken out and freed, then the table)
 */
#include "proxy-v2.h"
#include "udp-flows.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  udp_flow_t f;
  char name[128];
} hflow_t;

static int parse_addr(const char *s, udp_addr_t *a) {
  char host[80];
  const char *colon;
  memset(a, 0, sizeof *a);
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (end == NULL || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host) return -1;
    memcpy(host, s + 1, (size_t)(end - s - 1));
    host[end - s - 1] = '\0';
    char *pct = strchr(host, '%');
    if (pct != NULL) {
      *pct = '\0';
      a->in6.sin6_scope_id = (uint32_t)strtoul(pct + 1, NULL, 10);
    }
    a->in6.sin6_family = AF_INET6;
    a->in6.sin6_port = htons((uint16_t)atoi(end + 2));
    return inet_pton(AF_INET6, host, &a->in6.sin6_addr) == 1 ? 0 : -1;
  }
  colon = strrchr(s, ':');
  if (colon == NULL || (size_t)(colon - s) >= sizeof host) return -1;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  a->in4.sin_family = AF_INET;
  a->in4.sin_port = htons((uint16_t)atoi(colon + 1));
  return inet_pton(AF_INET, host, &a->in4.sin_addr) == 1 ? 0 : -1;
}

int main(void) {
  udp_flows_t t;
  char line[512], cmd[32], a1[128], a2[128];
  unsigned long long n1, n2;
  memset(&t, 0, sizeof t);
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin) != NULL) {
    udp_addr_t addr, addr2;
    udp_flow_t *f;
    if (sscanf(line, "%31s", cmd) != 1) continue;
    if (strcmp(cmd, "init") == 0 && sscanf(line, "%*s %llu %llu", &n1, &n2) == 2) {
      int rc = udp_flows_init(&t, (size_t)n1, n2, 12345);
      if (rc < 0) printf("err %d\n", -rc);
      else printf("ok\n");
    } else if (strcmp(cmd, "insert") == 0 && sscanf(line, "%*s %127s %llu", a1, &n1) == 2 && parse_addr(a1, &addr) == 0) {
      hflow_t *h = calloc(1, sizeof *h);
      snprintf(h->name, sizeof h->name, "%s", a1);
      f = udp_flows_insert(&t, &h->f, &addr.sa, n1);
      if (f != NULL) {
        printf("evicted %s\n", ((hflow_t *)f)->name);
        free(f);
      } else {
        printf("ok\n");
      }
    } else if (strcmp(cmd, "find") == 0 && sscanf(line, "%*s %127s", a1) == 1 && parse_addr(a1, &addr) == 0) {
      f = udp_flows_find(&t, &addr.sa);
      if (f != NULL) printf("found %s %llu\n", ((hflow_t *)f)->name, (unsigned long long)f->last_ms);
      else printf("none\n");
    } else if (strcmp(cmd, "touch") == 0 && sscanf(line, "%*s %127s %llu", a1, &n1) == 2 && parse_addr(a1, &addr) == 0) {
      f = udp_flows_find(&t, &addr.sa);
      if (f != NULL) udp_flows_touch(&t, f, n1);
      printf(f != NULL ? "ok\n" : "none\n");
    } else if (strcmp(cmd, "remove") == 0 && sscanf(line, "%*s %127s", a1) == 1 && parse_addr(a1, &addr) == 0) {
      f = udp_flows_find(&t, &addr.sa);
      if (f != NULL) {
        udp_flows_remove(&t, f);
        free(f);
      }
      printf(f != NULL ? "ok\n" : "none\n");
    } else if (strcmp(cmd, "expire") == 0 && sscanf(line, "%*s %llu", &n1) == 1) {
      printf("expired");
      while ((f = udp_flows_expire(&t, n1)) != NULL) {
        printf(" %s", ((hflow_t *)f)->name);
        free(f);
      }
      printf("\n");
    } else if (strcmp(cmd, "next") == 0) {
      uint64_t next = udp_flows_next_expiry(&t);
      if (next == UINT64_MAX) printf("none\n");
      else printf("%llu\n", (unsigned long long)next);
    } else if (strcmp(cmd, "count") == 0) {
      printf("%zu\n", t.count);
    } else if (strcmp(cmd, "fill") == 0 && sscanf(line, "%*s %llu %llu", &n1, &n2) == 2) {
      unsigned long long evicted = 0;
      for (unsigned long long i = 0; i < n1; i++) {
        hflow_t *h = calloc(1, sizeof *h);
        memset(&addr, 0, sizeof addr);
        addr.in4.sin_family = AF_INET;
        addr.in4.sin_port = htons(1);
        addr.in4.sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
        snprintf(h->name, sizeof h->name, "fill-%llu", i);
        f = udp_flows_insert(&t, &h->f, &addr.sa, n2);
        if (f != NULL) {
          evicted++;
          free(f);
        }
      }
      printf("evicted %llu\n", evicted);
    } else if (strcmp(cmd, "v2") == 0 && sscanf(line, "%*s %127s %127s", a1, a2) == 2) {
      unsigned long long cap = PROXY_V2_MAX;
      uint8_t out[PROXY_V2_MAX];
      sscanf(line, "%*s %*s %*s %llu", &cap);
      int src = strcmp(a1, "-") != 0 && parse_addr(a1, &addr) == 0;
      int dst = strcmp(a2, "-") != 0 && parse_addr(a2, &addr2) == 0;
      /* An exact-size heap copy: ASan sees any write beyond `cap`. */
      uint8_t *buf = malloc(cap > 0 ? cap : 1);
      int len = proxy_v2_dgram(buf, cap, src ? &addr.sa : NULL, dst ? &addr2.sa : NULL);
      if (len < 0) {
        printf("err %d\n", -len);
      } else {
        memcpy(out, buf, (size_t)len);
        for (int i = 0; i < len; i++) printf("%02x", out[i]);
        printf("\n");
      }
      free(buf);
    } else if (strcmp(cmd, "free") == 0) {
      while ((f = udp_flows_pop(&t)) != NULL) free(f);
      udp_flows_free(&t);
      printf("ok\n");
    } else {
      printf("bad command\n");
    }
  }
  return 0;
}
