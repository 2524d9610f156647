/* Closing fds off the event loop (closer.c), for fds whose close(2) another process can make block. */
#ifndef PODSOCK_CLOSER_H
#define PODSOCK_CLOSER_H
#include <node_api.h>
#include <stdbool.h>

/* Most fds queued or being closed at once: bounds what a peer can make podsock hold. */
#define CLOSER_QUEUE_MAX 1024
/* Slots peers cannot take (closer_reserve): podsock's own sockets can still be queued when peers filled
 * the rest. */
#define CLOSER_OWN_RESERVE 64

/* Someone waiting for room (closer_reserve). `wake` runs on the closer's thread with its lock held: it may
 * only signal (uv_async_send), never call into the closer. */
typedef struct closer_waiter {
  void (*wake)(struct closer_waiter *w);
  struct closer_waiter *next;
  unsigned need;
  bool queued;
} closer_waiter_t;

/* Reserve `n` slots for fds a peer may pass in the next receive (n <= CLOSER_QUEUE_MAX - CLOSER_OWN_RESERVE).
 * 0 on success; -EAGAIN when there is no room, and then `w` is woken once there is. */
int closer_reserve(unsigned n, closer_waiter_t *w);

/* Queue `count` received fds into slots taken by closer_reserve(`reserved`) and drop that reservation. */
void closer_commit(const int *fds, unsigned count, unsigned reserved);

/* Close one of podsock's own fds on the closer's thread (a socket whose queue may hold passed fds).
 * Closes it here instead when the queue is full or the thread cannot be started; never fails. */
void closer_close(int fd);

/* Forget a waiter before its memory goes. Idempotent. */
void closer_cancel(closer_waiter_t *w);

/* Adds closerInfo to `exports`. */
napi_status podsock_closer_register(napi_env env, napi_value exports);

#endif
