/*
 * Advisory record locks (fcntl(2), "Advisory record locking"), for lock files that must not outlive the
 * process holding them: the kernel drops a process's record locks when it exits, however it ends
 * (SIGKILL included), so a crash leaves no stale lock behind, unlike a pid file. Node has no API for
 * them.
 *
 * Traditional (process-associated) locks rather than flock(2) or open file description locks, because
 * only they tell who holds a lock: F_GETLK fills l_pid with the holder's pid, while for an open file
 * description lock it is -1 (fcntl(2)). That is how dpkg names the process holding its lock
 * (lib/dpkg/file.c, file_lock() and file_is_locked()). Their one trap: when a process closes any fd
 * referring to the file, all its locks on that file are released (fcntl(2), "Advisory record
 * locking"), so the file must be opened only by its lock's owner (src/lock-file.ts). They are not
 * inherited across fork(2), so podman and conmon never hold one.
 */
#include "internal.h"
#include "record-lock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

/* A holder can release the lock between our F_SETLK and F_GETLK; try again a few times only. */
#define RECORD_LOCK_TRIES 8

static void whole_file(struct flock *fl, short type) {
  memset(fl, 0, sizeof *fl);
  fl->l_type = type;
  fl->l_whence = SEEK_SET;
  fl->l_start = 0;
  fl->l_len = 0; /* to the end of the file, however it grows */
}

int record_lock_try(int fd, pid_t *holder) {
  struct flock fl;
  for (int i = 0; i < RECORD_LOCK_TRIES; i++) {
    whole_file(&fl, F_WRLCK);
    if (fcntl(fd, F_SETLK, &fl) == 0) return 0;
    /* fcntl(2): a conflicting lock is EACCES or EAGAIN, depending on the system. */
    if (errno != EACCES && errno != EAGAIN) return -errno;
    whole_file(&fl, F_WRLCK);
    if (fcntl(fd, F_GETLK, &fl) < 0) return -errno;
    if (fl.l_type == F_UNLCK) continue; /* released in between: try again */
    *holder = fl.l_pid;
    return 1;
  }
  return -EAGAIN;
}

/*
 * lockFile(fd) -> 0 | pid: 0 when the write lock on the whole file is now this process's; otherwise the
 * pid of the process holding it, or -1 when that process is in another PID namespace (F_GETLK gives 0
 * then). Errors are thrown (EAGAIN when the lock kept changing hands).
 */
static napi_value js_lock_file(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd;
  pid_t holder = 0;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || arg_int32(env, argv[0], "fd", &fd) < 0) return NULL;
  int r = record_lock_try(fd, &holder);
  if (r < 0) {
    throw_errno(env, "fcntl(F_SETLK)", -r);
    return NULL;
  }
  NAPI_CALL(env, napi_create_int32(env, r == 0 ? 0 : holder > 0 ? (int32_t)holder : -1, &result));
  return result;
}

napi_status podsock_record_lock_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"lockFile", NULL, js_lock_file, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
