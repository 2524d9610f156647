/*
 * The plan podsock-launch carries out (launch.c; podsock writes it: src/runtime/prestart.ts planBytes):
 * parsing and checking it, with a bound on every field, and the pure string work of carrying it out.
 * No system calls here, so that a fuzz driver can run it under AddressSanitizer
 * (test/unit/fuzz/launch-plan.test.ts).
 *
 * Format: NUL-terminated words, `podsock-plan 1` first, then records:
 *   file PATH SIG    stat(PATH) must give SIG ("dev:ino:size:mtime_ns", or "-" for absent)
 *   mkdir PATH       mkdir -p, then mode 0700 (absolute)
 *   unlink PATH      remove if present (absolute; cidfile, pidfile: podman refuses an existing cidfile)
 *   notify DIR MODE  a fresh mkdtemp sibling of DIR (DIR ends in /podsock-XXXXXX) with octal MODE and
 *                    notify.sock bound in it; every occurrence of DIR in the command is replaced by it
 *   fds N            the first N inherited fds (3..) go to podman with LISTEN_PID set (once)
 *   exe PATH         podman (absolute, once)
 *   arg A            argv, argv[0] first
 *   env NAME=VALUE   podman's environment without the per-activation variables (each NAME once)
 */
#ifndef PODSOCK_PLAN_H
#define PODSOCK_PLAN_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/un.h>

/* The whole file. */
#define PLAN_MAX (1024 * 1024)
/* One word: an argument or NAME=VALUE may not be longer for execve(2) (E2BIG): MAX_ARG_STRLEN,
 * 32 pages, in linux/binfmts.h, less the terminating NUL. */
#define PLAN_WORD_MAX (32 * 4096 - 1)
/* A path (file, mkdir, unlink, exe): PATH_MAX counts the NUL (limits.h). */
#define PLAN_PATH_MAX (PATH_MAX - 1)
#define PLAN_ARGS_MAX 4096
#define PLAN_ENV_MAX 4096
#define PLAN_FILES_MAX 64
#define PLAN_MKDIRS_MAX 8
#define PLAN_UNLINKS_MAX 8
#define PLAN_NOTIFY_MAX 4
#define PLAN_FDS_MAX 1024
#define PLAN_NOTIFY_SOCKET_NAME "notify.sock"
#define PLAN_NOTIFY_PREFIX "podsock-"
/* A notify directory: DIR/notify.sock with its NUL must fit sockaddr_un.sun_path (unix(7)), 95 bytes. */
#define PLAN_NOTIFY_DIR_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - sizeof "/" PLAN_NOTIFY_SOCKET_NAME)
/* Room for a reason (PODSOCK_PRESTART "none REASON"). */
#define PLAN_WHY_MAX 256

typedef struct plan_file {
  const char *path, *sig;
} plan_file_t;

typedef struct plan_notify {
  const char *old_dir;
  /* The mkdtemp(3) template beside old_dir, "PARENT/podsock-XXXXXX", as long as old_dir; then the directory made from it. */
  char dir[PLAN_NOTIFY_DIR_MAX + 1];
  mode_t mode;
  int fd; /* the bound socket, -1 until made */
} plan_notify_t;

typedef struct plan {
  const char *exe;
  const char *args[PLAN_ARGS_MAX];
  int nargs;
  const char *env[PLAN_ENV_MAX]; /* sorted by name (command_env_cmp) */
  int nenv;
  plan_file_t files[PLAN_FILES_MAX];
  int nfiles;
  const char *mkdirs[PLAN_MKDIRS_MAX];
  int nmkdirs;
  const char *unlinks[PLAN_UNLINKS_MAX];
  int nunlinks;
  plan_notify_t notify[PLAN_NOTIFY_MAX];
  int nnotify;
  int fds;
} plan_t;

/*
 * Parse `size` bytes of plan into `p`, whose pointers point into `buf` (which must outlive it). 0, or
 * -EINVAL with `why` (PLAN_WHY_MAX bytes) saying what is wrong: the plan must not be carried out.
 * Checks everything that needs no system call; the caller checks the files, LISTEN_FDS and LISTEN_PID.
 */
int plan_parse(const char *buf, size_t size, plan_t *p, char why[PLAN_WHY_MAX]);

/* True for the variables that change with every activation: never in a plan, copied from the launcher's environment. */
int plan_passed_var(const char *entry);

/* A copy of `s` (malloc) with every old notify directory replaced by its new one (same length), or NULL. */
char *plan_substitute(const char *s, const plan_notify_t *nt, int nn);

/* `n` bytes of `s` for a message: printable ASCII kept, anything else '?', at most 48 bytes then "...". */
void plan_quote(char *out, size_t size, const char *s, size_t n);

#endif
