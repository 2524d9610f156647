/* Advisory record locks on a whole file (record-lock.c): registered on the addon's exports by its init. */
#ifndef PODSOCK_RECORD_LOCK_H
#define PODSOCK_RECORD_LOCK_H
#include <node_api.h>
#include <sys/types.h>

/* Adds lockFile to `exports`. */
napi_status podsock_record_lock_register(napi_env env, napi_value exports);

/*
 * Try to take a write lock on the whole file `fd` refers to, without waiting. 0 when it is taken; the
 * pid of the process holding it (> 0), or 0 when that process is in another PID namespace; a negative
 * errno when fcntl(2) fails for another reason.
 */
int record_lock_try(int fd, pid_t *holder);

#endif
