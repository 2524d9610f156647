/*
 * The UDP proxy engine's JS entry points (udp-proxy.h): udpProxyOpen, udpProxySetTarget,
 * udpProxyUnsetTarget, udpProxyInfo and udpProxyClose, the engine's life cycle, and the events it sends
 * to JS (count, drop, error).
 */
#include "internal.h"
#include "udp-proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

static void set_num(napi_env env, napi_value obj, const char *name, double v) {
  napi_value n;
  if (napi_create_double(env, v, &n) == napi_ok) napi_set_named_property(env, obj, name, n);
}

static void set_str(napi_env env, napi_value obj, const char *name, const char *s) {
  napi_value v;
  if (napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, name, v);
}

/* onEvent(event): a `count`, `drop` or `error` event object, with what each carries. */
static void emit(udp_proxy_t *p, const char *type, int err, const char *syscall) {
  napi_env env = p->h.env;
  napi_handle_scope scope;
  napi_value ev, self;
  if (p->closed || p->h.env_gone || p->h.callback == NULL || p->h.self == NULL) return;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_create_object(env, &ev) != napi_ok) goto out;
  set_str(env, ev, "type", type);
  if (strcmp(type, "count") == 0) {
    set_num(env, ev, "flows", (double)p->flows.count);
    set_num(env, ev, "queued", (double)p->q_count);
  } else if (strcmp(type, "drop") == 0) {
    set_num(env, ev, "dropped", (double)p->c.dropped);
    set_num(env, ev, "truncated", (double)p->c.truncated);
    set_num(env, ev, "failed", (double)p->c.failed);
  } else {
    napi_value e = errno_error(env, syscall, err);
    if (e != NULL) napi_set_named_property(env, ev, "error", e);
  }
  if (napi_get_reference_value(env, p->h.self, &self) != napi_ok) goto out;
  handle_call(&p->h, self, 1, &ev);
out:
  napi_close_handle_scope(env, scope);
}

/* At the end of each loop callback: tell JS what changed. */
void udp_proxy_report(udp_proxy_t *p) {
  uint64_t now = uv_now(p->loop);
  p->report_pending = false;
  if (p->flows.count != p->reported_flows || (p->q_count == 0) != (p->reported_queued == 0)) {
    p->reported_flows = p->flows.count;
    p->reported_queued = p->q_count;
    emit(p, "count", 0, NULL);
  }
  if (p->closed) return;
  uint64_t drops = udp_proxy_drops_total(p);
  if (drops != p->drops_reported) {
    if (p->drop_event_at == 0 || now >= p->drop_event_at + DROP_EVENT_MS) {
      p->drops_reported = drops;
      p->drop_event_at = now;
      emit(p, "drop", 0, NULL);
    } else {
      udp_proxy_timer_arm(p, p->drop_event_at + DROP_EVENT_MS);
    }
  }
}

/* Receiving on the listening socket failed for good: stop reading and tell JS (it still closes). */
void udp_proxy_stop(udp_proxy_t *p, const char *syscall, int err) {
  if (p->poll_init && !p->stopped) uv_poll_stop(&p->poll);
  p->stopped = true;
  emit(p, "error", err, syscall);
}

/* ------------------------------------------------------------------------------------------------ */
/* Life cycle                                                                                        */

/* Close every flow and fd, drop the queue. Idempotent. `js`: Node-API references may be released. */
static void udp_proxy_shutdown(udp_proxy_t *p, bool js) {
  if (!p->closed) {
    p->closed = true;
    if (p->flows.buckets != NULL) {
      udp_proxy_flows_close_all(p);
      udp_flows_free(&p->flows);
    }
    udp_proxy_queue_free(p);
    free(p->bufs);
    p->bufs = NULL;
    if (p->poll_init) {
      p->poll_init = false;
      uv_close((uv_handle_t *)&p->poll, handle_on_uv_closed);
    }
    if (p->timer_init) {
      p->timer_init = false;
      uv_close((uv_handle_t *)&p->timer, handle_on_uv_closed);
    }
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
    if (p->netns_fd >= 0) close(p->netns_fd);
    p->netns_fd = -1;
  }
  if (js) handle_js_drop(&p->h);
  handle_unhook(&p->h);
}

static void udp_proxy_on_env_gone(handle_t *h) {
  udp_proxy_shutdown((udp_proxy_t *)h, false);
}

static void udp_proxy_finalize(napi_env env, void *data, void *hint) {
  udp_proxy_t *p = data;
  udp_proxy_shutdown(p, false);
  handle_unref(&p->h);
}

static udp_proxy_t *unwrap_udp_proxy(napi_env env, napi_value obj) {
  void *data = NULL;
  if (napi_unwrap(env, obj, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: not a UDP proxy handle");
    return NULL;
  }
  return data;
}

static int arg_range(napi_env env, napi_value v, const char *what, int64_t min, int64_t max, int64_t *out) {
  int32_t i;
  if (arg_int32(env, v, what, &i) < 0) return -EINVAL;
  if (i < min || i > max) {
    throw_errno(env, what, EINVAL);
    return -EINVAL;
  }
  *out = i;
  return 0;
}

/*
 * udpProxyOpen(fd, flowTimeoutMs, maxFlows, queueDatagrams, queueBytes, proxyV2, onEvent) -> handle
 *
 * Start serving the UDP socket `fd` (AF_INET or AF_INET6, SOCK_DGRAM, bound): datagrams are read at
 * once and queued until udpProxySetTarget. The engine owns `fd` once this returns; when it throws, the
 * caller still does. IP_PKTINFO / IPV6_RECVPKTINFO are switched on for it (they only add ancillary data
 * to what recvmsg returns). An active engine keeps the loop alive.
 */
static napi_value js_udp_proxy_open(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7], handle;
  napi_valuetype t;
  int32_t fd;
  int64_t timeout_ms, max_flows, queue_max, queue_bytes;
  bool proxy_v2;
  int type = 0, domain = 0, one = 1, rc;
  socklen_t optlen = sizeof type;
  udp_addr_t bound;
  socklen_t bound_len = sizeof bound;
  uint32_t seed = 0;
  udp_proxy_t *p;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 7) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: udpProxyOpen needs 7 arguments");
    return NULL;
  }
  if (arg_int32(env, argv[0], "fd", &fd) < 0 || arg_range(env, argv[1], "flowTimeoutMs", 1, INT32_MAX, &timeout_ms) < 0 ||
      arg_range(env, argv[2], "maxFlows", 1, UDP_FLOWS_MAX, &max_flows) < 0 ||
      arg_range(env, argv[3], "queueDatagrams", 0, QUEUE_DATAGRAMS_MAX, &queue_max) < 0 ||
      arg_range(env, argv[4], "queueBytes", 0, QUEUE_BYTES_MAX, &queue_bytes) < 0)
    return NULL;
  NAPI_CALL(env, napi_get_value_bool(env, argv[5], &proxy_v2));
  NAPI_CALL(env, napi_typeof(env, argv[6], &t));
  if (t != napi_function) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: onEvent must be a function");
    return NULL;
  }
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &optlen) < 0 ||
      (optlen = sizeof domain, getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &optlen)) < 0) {
    throw_errno(env, "getsockopt", errno);
    return NULL;
  }
  if (type != SOCK_DGRAM || (domain != AF_INET && domain != AF_INET6)) {
    throw_errno(env, "udpProxyOpen", ENOTSOCK);
    return NULL;
  }
  if (getsockname(fd, &bound.sa, &bound_len) < 0) {
    throw_errno(env, "getsockname", errno);
    return NULL;
  }
  if ((domain == AF_INET && setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0) ||
      (domain == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) < 0)) {
    throw_errno(env, "setsockopt(PKTINFO)", errno);
    return NULL;
  }
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) < 0) seed = (uint32_t)(uintptr_t)&seed ^ (uint32_t)getpid();

  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  p = calloc(1, sizeof *p);
  if (p == NULL) {
    throw_errno(env, "calloc", ENOMEM);
    return NULL;
  }
  p->loop = loop;
  handle_init(&p->h, env, udp_proxy_on_env_gone);
  p->fd = -1;
  p->netns_fd = -1;
  p->family = domain;
  p->port = domain == AF_INET ? bound.in4.sin_port : bound.in6.sin6_port;
  p->bound = bound;
  p->bound_specific = domain == AF_INET ? bound.in4.sin_addr.s_addr != htonl(INADDR_ANY) : !IN6_IS_ADDR_UNSPECIFIED(&bound.in6.sin6_addr);
  p->queue_max = (uint32_t)queue_max;
  p->queue_bytes_max = (size_t)queue_bytes;
  p->proxy_v2 = proxy_v2;
  p->poll.data = p;
  p->timer.data = p;
  rc = udp_flows_init(&p->flows, (size_t)max_flows, (uint64_t)timeout_ms, seed);
  p->bufs = rc < 0 ? NULL : malloc((size_t)BATCH * DGRAM_MAX);
  if (rc < 0 || p->bufs == NULL) {
    udp_flows_free(&p->flows);
    free(p->bufs);
    free(p);
    throw_errno(env, "malloc", ENOMEM);
    return NULL;
  }
  if (napi_create_object(env, &handle) != napi_ok || napi_wrap(env, handle, p, udp_proxy_finalize, NULL, NULL) != napi_ok) {
    udp_flows_free(&p->flows);
    free(p->bufs);
    free(p);
    NAPI_CALL(env, napi_generic_failure);
  }
  /* From here the wrapper owns p: failures go through udp_proxy_shutdown, which leaves fd to the caller
   * as long as p->fd is -1. */
  if (handle_js_take(&p->h, argv[6], handle, "PodsockUdpProxy") < 0) {
    udp_proxy_shutdown(p, true);
    NAPI_CALL(env, napi_generic_failure);
  }
  rc = uv_poll_init(p->loop, &p->poll, fd);
  if (rc < 0) {
    udp_proxy_shutdown(p, true);
    throw_errno(env, "uv_poll_init", -rc);
    return NULL;
  }
  p->poll_init = true;
  handle_ref(&p->h);
  uv_timer_init(p->loop, &p->timer);
  uv_unref((uv_handle_t *)&p->timer); /* the listening poll keeps the loop alive, not the timer */
  p->timer_init = true;
  handle_ref(&p->h);
  handle_hook(&p->h);
  rc = uv_poll_start(&p->poll, UV_READABLE, udp_proxy_on_readable);
  if (rc < 0) {
    udp_proxy_shutdown(p, true);
    throw_errno(env, "uv_poll_start", -rc);
    return NULL;
  }
  p->fd = fd;
  return handle;
}

/* udpProxySetTarget(handle, host, port, netnsFd): the backend is `host` (numeric IPv4 or IPv6):`port`,
 * reached from the network namespace netnsFd (dup'ed; -1: podsock's own). Existing flows close (they were
 * connected to the old target); the queue is delivered in order, then datagrams go straight through. */
static napi_value js_udp_proxy_set_target(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  char host[STRING_ARG_MAX];
  size_t host_len;
  int32_t port, nsfd;
  udp_addr_t target;
  udp_proxy_t *p;

  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 4 || (p = unwrap_udp_proxy(env, argv[0])) == NULL || arg_string(env, argv[1], "udpProxySetTarget", host, sizeof host, &host_len) < 0 ||
      arg_int32(env, argv[2], "port", &port) < 0 || arg_int32(env, argv[3], "netnsFd", &nsfd) < 0)
    return NULL;
  memset(&target, 0, sizeof target);
  if (port < 1 || port > 65535 ||
      (uv_ip4_addr(host, port, &target.in4) != 0 && uv_ip6_addr(host, port, &target.in6) != 0)) {
    throw_errno(env, "udpProxySetTarget", EINVAL);
    return NULL;
  }
  if (p->closed) {
    throw_errno(env, "udpProxySetTarget", EBADF);
    return NULL;
  }
  int dup = -1;
  if (nsfd >= 0 && (dup = fcntl(nsfd, F_DUPFD_CLOEXEC, 3)) < 0) {
    throw_errno(env, "fcntl(F_DUPFD_CLOEXEC)", errno);
    return NULL;
  }
  udp_proxy_flows_close_all(p);
  if (p->netns_fd >= 0) close(p->netns_fd);
  p->netns_fd = dup;
  p->target = target;
  p->target_len = target.sa.sa_family == AF_INET ? sizeof target.in4 : sizeof target.in6;
  p->has_target = true;
  udp_proxy_queue_flush(p);
  p->report_pending = true; /* reported from the loop, never from inside this call */
  udp_proxy_timer_rearm(p);
  return NULL;
}

/* udpProxyUnsetTarget(handle): the backend is gone (stopped, restarting): close every flow, queue again. */
static napi_value js_udp_proxy_unset_target(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  udp_proxy_t *p;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || (p = unwrap_udp_proxy(env, argv[0])) == NULL) return NULL;
  if (p->closed) return NULL;
  udp_proxy_flows_close_all(p);
  p->has_target = false;
  if (p->netns_fd >= 0) close(p->netns_fd);
  p->netns_fd = -1;
  p->report_pending = true;
  udp_proxy_timer_rearm(p);
  return NULL;
}

/* udpProxyInfo(handle) -> the counters. */
static napi_value js_udp_proxy_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], obj, v;
  udp_proxy_t *p;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || (p = unwrap_udp_proxy(env, argv[0])) == NULL) return NULL;
  NAPI_CALL(env, napi_create_object(env, &obj));
  NAPI_CALL(env, napi_get_boolean(env, !p->closed && !p->stopped, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, "active", v));
  NAPI_CALL(env, napi_get_boolean(env, p->has_target, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, "hasTarget", v));
  set_num(env, obj, "flows", (double)p->flows.count);
  set_num(env, obj, "queued", (double)p->q_count);
  set_num(env, obj, "queuedBytes", (double)p->q_bytes);
  set_num(env, obj, "dropped", (double)p->c.dropped);
  set_num(env, obj, "evicted", (double)p->c.evicted);
  set_num(env, obj, "expired", (double)p->c.expired);
  set_num(env, obj, "truncated", (double)p->c.truncated);
  set_num(env, obj, "refused", (double)p->c.refused);
  set_num(env, obj, "failed", (double)p->c.failed);
  set_num(env, obj, "datagramsIn", (double)p->c.datagrams_in);
  set_num(env, obj, "datagramsOut", (double)p->c.datagrams_out);
  set_num(env, obj, "bytesIn", (double)p->c.bytes_in);
  set_num(env, obj, "bytesOut", (double)p->c.bytes_out);
  return obj;
}

/* udpProxyClose(handle): close every fd the engine owns. Idempotent; callable from onEvent. */
static napi_value js_udp_proxy_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  udp_proxy_t *p;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || (p = unwrap_udp_proxy(env, argv[0])) == NULL) return NULL;
  udp_proxy_shutdown(p, true);
  return NULL;
}

napi_status podsock_udp_proxy_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"udpProxyOpen", NULL, js_udp_proxy_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpProxySetTarget", NULL, js_udp_proxy_set_target, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpProxyUnsetTarget", NULL, js_udp_proxy_unset_target, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpProxyInfo", NULL, js_udp_proxy_info, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpProxyClose", NULL, js_udp_proxy_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
