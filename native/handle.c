/*
 * The life cycle of the addon's handles (handle.h): one implementation of the references, the callback
 * and the teardown that the datagram socket, the relay and the acceptor each used to repeat.
 */
#include "handle.h"

#include <errno.h>
#include <stdlib.h>

void handle_init(handle_t *h, napi_env env, void (*on_env_gone)(handle_t *h)) {
  h->env = env;
  h->owners = 1;
  h->on_env_gone = on_env_gone;
}

int handle_js_take(handle_t *h, napi_value callback, napi_value self, const char *name) {
  napi_env env = h->env;
  napi_value name_v;
  if (napi_create_reference(env, callback, 1, &h->callback) != napi_ok ||
      (self != NULL && napi_create_reference(env, self, 1, &h->self) != napi_ok) ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &name_v) != napi_ok ||
      napi_async_init(env, self, name_v, &h->actx) != napi_ok)
    return -ENOMEM;
  return 0;
}

void handle_js_release(handle_t *h) {
  if (!h->env_gone) {
    if (h->callback != NULL) napi_delete_reference(h->env, h->callback);
    if (h->self != NULL) napi_delete_reference(h->env, h->self);
    if (h->actx != NULL) napi_async_destroy(h->env, h->actx);
  }
  h->callback = NULL;
  h->self = NULL;
  h->actx = NULL;
  h->release_pending = false;
}

void handle_js_drop(handle_t *h) {
  if (h->in_callback) h->release_pending = true;
  else handle_js_release(h);
}

napi_status handle_call(handle_t *h, napi_value recv, size_t argc, const napi_value *argv) {
  napi_env env = h->env;
  napi_value callback;
  napi_status called = napi_get_reference_value(env, h->callback, &callback);
  if (called != napi_ok || callback == NULL) return called != napi_ok ? called : napi_generic_failure;
  h->in_callback = true;
  called = napi_make_callback(env, h->actx, recv, callback, argc, argv, NULL);
  h->in_callback = false;
  if (h->release_pending) handle_js_release(h);
  if (called == napi_pending_exception) {
    napi_value exception;
    if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) napi_fatal_exception(env, exception);
  }
  return called;
}

static void handle_on_env_cleanup(void *arg) {
  handle_t *h = arg;
  h->cleanup_hook = false; /* being run now; Node drops it itself */
  h->env_gone = true;
  h->on_env_gone(h);
}

void handle_hook(handle_t *h) {
  if (!h->cleanup_hook && napi_add_env_cleanup_hook(h->env, handle_on_env_cleanup, h) == napi_ok)
    h->cleanup_hook = true;
}

void handle_unhook(handle_t *h) {
  if (!h->cleanup_hook) return;
  if (!h->env_gone) napi_remove_env_cleanup_hook(h->env, handle_on_env_cleanup, h);
  h->cleanup_hook = false;
}

void handle_ref(handle_t *h) {
  h->owners++;
}

void handle_unref(handle_t *h) {
  if (--h->owners == 0) free(h);
}

void handle_on_uv_closed(uv_handle_t *uvh) {
  handle_unref(uvh->data);
}
