/*
 * The life cycle that the datagram socket (dgram.c), the relay (relay.c) and the acceptor (acceptor.c)
 * share: the JS callback and wrapper they hold while active, the async context their callbacks run in
 * (napi_make_callback: async_hooks, microtask draining), a callback that may close its own handle, the
 * environment's teardown, and the owners that keep the memory until the last libuv close callback.
 *
 * Embed a handle_t as the FIRST member of the object, so that the object and its handle_t are one
 * pointer (libuv handles' `data` point at either) and handle_unref can free the object.
 */
#ifndef PODSOCK_HANDLE_H
#define PODSOCK_HANDLE_H

#include <node_api.h>
#include <stdbool.h>
#include <uv.h>

typedef struct handle handle_t;

struct handle {
  napi_env env;
  int owners;               /* the JS wrapper + each libuv handle until its close callback; freed at 0 */
  bool in_callback;         /* the JS callback is running (it may close this handle) */
  bool release_pending;     /* closed from inside the callback: drop the references once it returns */
  bool cleanup_hook;        /* env cleanup hook registered */
  bool env_gone;            /* environment teardown: never call into JS again */
  napi_ref callback;        /* the JS callback, while active */
  napi_ref self;            /* the JS wrapper, while active: an active handle is never collected */
  napi_async_context actx;
  void (*on_env_gone)(handle_t *h); /* teardown: stop everything, close the fds, call no JS */
};

/* Start the life cycle of a zeroed handle: one owner (the caller's), no JS references yet. */
void handle_init(handle_t *h, napi_env env, void (*on_env_gone)(handle_t *h));

/* Take the JS callback, the wrapper `self` (NULL: none; then the async resource is a new object) and an
 * async context named `name`. 0 or -ENOMEM; on failure, what was taken is released by handle_js_release. */
int handle_js_take(handle_t *h, napi_value callback, napi_value self, const char *name);

/* Drop the callback, the wrapper and the async context (only their pointers once the environment is gone). */
void handle_js_release(handle_t *h);

/* As handle_js_release, but after the running callback returned when called from inside it: the async
 * context must outlive the napi_make_callback that may be running it right now. */
void handle_js_drop(handle_t *h);

/* Call the callback with `recv` as `this`. A JS exception nobody up the stack can catch is reported as an
 * uncaught exception, as Node's own handles do, and none is left pending (it would make every later
 * Node-API call fail). Returns napi_make_callback's status. */
napi_status handle_call(handle_t *h, napi_value recv, size_t argc, const napi_value *argv);

/* Register / remove the environment cleanup hook that calls on_env_gone. Idempotent. */
void handle_hook(handle_t *h);
void handle_unhook(handle_t *h);

/* One more owner, and one less: the last one frees the object. */
void handle_ref(handle_t *h);
void handle_unref(handle_t *h);

/* A uv_close callback for a libuv handle whose `data` is the object: drops that handle's owner. */
void handle_on_uv_closed(uv_handle_t *uvh);

#endif
