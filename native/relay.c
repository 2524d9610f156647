/*
 * The relay's core (relay.h): the handles JS holds, finishing a relay on either engine, reporting its end
 * and freeing it; and the JS entry points relayAbort and relayInfo. Starting one is relay-connect.c's;
 * moving its bytes relay-poll.c's and relay-uring.c's.
 */
#include "relay.h"
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * Handles. JS gets a relay as a number (slot | generation << RELAY_SLOT_BITS), not as a wrapped object:
 * a wrapped object's memory is only released by its finalizer, i.e. at the next garbage collection,
 * which under thousands of new connections a second let the freed relays' memory pile up by tens of
 * MiB. A relay is freed as soon as its last handle closed; a handle kept afterwards finds its slot's
 * generation changed and is a finished relay. The table belongs to the thread (Node's loop thread; a
 * worker has its own) and is released whenever no relay is live.
 */
#define RELAY_SLOT_BITS 20
#define RELAY_SLOTS_MAX (1u << RELAY_SLOT_BITS)
#define RELAY_GEN_MASK 0x7ffu /* 11 bits: the handle stays a positive int32 */

typedef struct {
  relay_t **slots;
  uint16_t *gens;
  uint32_t *free_slots;
  uint32_t cap, top, nfree, live;
} relay_table_t;

static _Thread_local relay_table_t relay_table;

/* Give r a slot; returns its handle, or -ENOMEM (no memory, or a million relays already). */
int32_t relay_register(relay_t *r) {
  relay_table_t *t = &relay_table;
  uint32_t slot;
  if (t->nfree > 0) {
    slot = t->free_slots[--t->nfree];
  } else {
    if (t->top == t->cap) {
      uint32_t cap = t->cap == 0 ? 256 : t->cap * 2;
      if (cap > RELAY_SLOTS_MAX) return -ENOMEM;
      relay_t **slots = realloc(t->slots, cap * sizeof *slots);
      if (slots == NULL) return -ENOMEM;
      t->slots = slots;
      uint16_t *gens = realloc(t->gens, cap * sizeof *gens);
      if (gens == NULL) return -ENOMEM;
      t->gens = gens;
      uint32_t *free_slots = realloc(t->free_slots, cap * sizeof *free_slots);
      if (free_slots == NULL) return -ENOMEM;
      t->free_slots = free_slots;
      memset(t->gens + t->cap, 0, (cap - t->cap) * sizeof *gens);
      t->cap = cap;
    }
    slot = t->top++;
  }
  t->slots[slot] = r;
  t->live++;
  r->slot = slot;
  return (int32_t)(((uint32_t)t->gens[slot] << RELAY_SLOT_BITS) | slot);
}

void relay_unregister(relay_t *r) {
  relay_table_t *t = &relay_table;
  t->slots[r->slot] = NULL;
  t->gens[r->slot] = (uint16_t)((t->gens[r->slot] + 1) & RELAY_GEN_MASK);
  t->free_slots[t->nfree++] = r->slot;
  if (--t->live == 0) {
    free(t->slots);
    free(t->gens);
    free(t->free_slots);
    memset(t, 0, sizeof *t);
  }
}

/* The relay behind a handle, or NULL for a finished one (or a number that never was a handle). */
static relay_t *relay_lookup(int32_t handle) {
  relay_table_t *t = &relay_table;
  if (handle < 0) return NULL;
  uint32_t slot = (uint32_t)handle & (RELAY_SLOTS_MAX - 1);
  uint32_t gen = (uint32_t)handle >> RELAY_SLOT_BITS;
  if (slot >= t->top || t->gens[slot] != gen) return NULL;
  return t->slots[slot];
}

/* The engine is done with r (every handle closed, onDone called): free it. */
static void relay_release(relay_t *r) {
  relay_unregister(r);
  free(r);
}

/* Call the callback with (err, kind) (handle_call: a pending exception becomes an uncaught exception). */
void relay_call(relay_t *r, int kind) {
  napi_env env = r->h.env;
  napi_handle_scope scope;
  napi_value recv, argv[2];
  if (r->h.callback == NULL || r->h.env_gone || r->silent) return;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  argv[0] = NULL;
  if (kind != RELAY_CONNECTED && r->err != 0) argv[0] = errno_error(env, r->err_syscall, r->err);
  if (argv[0] == NULL) napi_get_null(env, &argv[0]);
  /* napi_make_callback needs an object receiver (node::MakeCallback takes a v8::Object). */
  if (napi_create_int32(env, kind, &argv[1]) == napi_ok && napi_get_global(env, &recv) == napi_ok)
    handle_call(&r->h, recv, 2, argv);
  napi_close_handle_scope(env, scope);
}

/* Call onDone once (not during environment teardown, not after a cancel), then drop the JS references. */
static void relay_call_done(relay_t *r) {
  if (r->h.callback == NULL) return;
  relay_call(r, r->connect_failed ? RELAY_CONNECT_FAILED : RELAY_DONE);
  handle_js_release(&r->h);
}

/* Close the fds that are still open, abortively (SO_LINGER {1, 0}: close() sends a TCP reset, socket(7))
 * when relay_finish said so. */
static void relay_close_fds(relay_t *r) {
  for (int i = 0; i < 2; i++) {
    if (r->fd[i] < 0) continue;
    if (r->abortive) {
      struct linger lg = {.l_onoff = 1, .l_linger = 0};
      setsockopt(r->fd[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(r->fd[i]);
    r->fd[i] = -1;
  }
}

/* A finished relay whose last poll or timer closed and whose last io_uring operation completed: close its
 * fds (on the ring they are closed only now, see relay_finish), call onDone and free it. Buffers are freed
 * only here: an operation in flight may still point into them. Not while a caller further up the stack
 * still works on r (r->holds): that caller calls this again when it is done. */
void relay_release_now(relay_t *r) {
  r->holds++; /* onDone and a buffer given back can call into JS, which must not release r twice */
  relay_close_fds(r);
  if (r->uring) ring_forget(r);
  relay_dir_free(&r->dir[0]);
  relay_dir_free(&r->dir[1]);
  relay_call_done(r);
  if (r->uring) ring_relay_released();
  relay_release(r);
}

static void relay_on_poll_closed(uv_handle_t *handle) {
  relay_t *r = handle->data;
  r->closing--;
  relay_maybe_release(r);
}

/*
 * Close everything. `abortive`: SO_LINGER {1, 0} first, so that close() sends a TCP reset (socket(7));
 * on a unix socket the option is accepted and the peer sees ECONNRESET only if data was unread. The
 * poll handles are closed; the last close callback calls onDone and frees the relay.
 *
 * On the io_uring engine the fds stay open until the last operation completed (relay_maybe_release):
 * io_uring resolves an operation's fd number only when it submits it (io_uring/io_uring.c
 * io_assign_file), so an operation still queued when its fd was closed would go to whatever reused the
 * number, e.g. the socket of the next connection, opened from an onDone called in the same batch of
 * completions. ring_finish cancels what is in flight, so the wait is short.
 */
void relay_finish(relay_t *r, int err, const char *syscall, bool abortive) {
  if (r->finished) return;
  r->finished = true;
  if (err != 0 && r->err == 0) {
    r->err = err;
    r->err_syscall = syscall;
  }
  /* Polls first: uv_close() takes the fds out of the loop's epoll set, which must happen while they are
   * still open (and before their numbers can be reused). */
  for (int i = 0; i < 2; i++) {
    if (!r->poll_init[i]) continue;
    r->poll_init[i] = false;
    r->closing++;
    uv_close((uv_handle_t *)&r->poll[i], relay_on_poll_closed);
  }
  if (r->timer_init) {
    r->timer_init = false;
    r->closing++;
    uv_close((uv_handle_t *)&r->timer, relay_on_poll_closed);
  }
  r->abortive = abortive;
  if (!r->uring || !ring_is_open()) relay_close_fds(r);
  /* io_uring: the operations in flight hold the sockets and point into the buffers; they are cancelled
   * here, and onDone (and the close) waits for their completions. */
  if (r->uring) ring_finish(r);
  handle_unhook(&r->h);
  /* With nothing asynchronous left (a set-up error before any poll existed), this releases it now. */
  relay_maybe_release(r);
}

/* Environment teardown (process exit, worker end): release the fds and the polls, call no JS. */
void relay_on_env_gone(handle_t *h) {
  relay_finish((relay_t *)h, 0, NULL, true);
}

/* The ring is gone (environment teardown, relay-uring.c): nothing completes any more, so the relays that
 * waited for their last completion close their fds now (and are freed unless a handle's close callback
 * is still due). */
void relay_ring_gone(void) {
  relay_table_t *t = &relay_table;
  for (uint32_t i = 0; i < t->top; i++) {
    relay_t *r = t->slots[i];
    if (r == NULL || !r->uring) continue;
    r->h.env_gone = true;
    r->inflight = 0;
    relay_close_fds(r);
    relay_maybe_release(r); /* may free the table with the last relay: then t->top is 0 */
  }
}

int arg_relay(napi_env env, napi_value v, relay_t **r) {
  int32_t handle;
  int err = arg_int32(env, v, "relay handle", &handle);
  if (err < 0) return err;
  *r = relay_lookup(handle);
  return 0;
}

int relay_dir_init(relay_dir_t *d, int from, int to, const void *initial, size_t len, bool ended,
                   int splice_after) {
  memset(d, 0, sizeof *d);
  d->ubid = -1;
  d->from = from;
  d->to = to;
  d->eof = ended;
  d->splice_after = splice_after;
  d->pipe[0] = d->pipe[1] = -1;
  if (len > 0) {
    d->cap = len > RELAY_BUFFER_BYTES ? len : RELAY_BUFFER_BYTES;
    d->buf = malloc(d->cap);
    if (d->buf == NULL) return -ENOMEM;
    memcpy(d->buf, initial, len);
    d->tail = len;
  }
  return 0;
}

/* relayAbort(handle): reset both connections now (onDone(null) follows). Idempotent. */
static napi_value js_relay_abort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  relay_t *r;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_relay(env, argv[0], &r) < 0) return NULL;
  if (r != NULL) relay_finish(r, 0, NULL, true);
  return NULL;
}

/* relayInfo(handle) -> { active, buffered, splicing, engine, idleMs }: whether the relay still runs, the
 * bytes it holds, whether a direction splices, its engine ('poll' for a finished one), and the
 * milliseconds since it started relaying or last moved bytes, saw an EOF or an error (by the loop's
 * clock, uv_now; 0 for a finished one). */
static napi_value js_relay_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, v;
  relay_t *r;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_relay(env, argv[0], &r) < 0) return NULL;
  bool active = r != NULL && !r->finished;
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_get_boolean(env, active, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "active", v));
  NAPI_CALL(env, napi_create_double(env, active ? (double)(relay_pending(&r->dir[0]) + relay_pending(&r->dir[1])) : 0, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "buffered", v));
  NAPI_CALL(env, napi_get_boolean(env, active && (r->dir[0].splicing || r->dir[1].splicing), &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "splicing", v));
  NAPI_CALL(env, napi_create_string_utf8(env, r != NULL && r->uring ? "io_uring" : "poll", NAPI_AUTO_LENGTH, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "engine", v));
  uint64_t idle = active && !r->connecting ? uv_now(r->loop) - r->active_at : 0;
  NAPI_CALL(env, napi_create_double(env, (double)idle, &v));
  NAPI_CALL(env, napi_set_named_property(env, result, "idleMs", v));
  return result;
}

napi_status podsock_relay_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"relayAbort", NULL, js_relay_abort, NULL, NULL, NULL, napi_enumerable, NULL},
      {"relayInfo", NULL, js_relay_info, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
