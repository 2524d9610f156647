/*
 * podsock-launch NODE SCRIPT ARGS...: start `podman run` before Node has booted, then exec NODE SCRIPT
 * ARGS... in this same process (same pid, so LISTEN_PID stays right for podsock).
 *
 * Node takes some 60 ms to start on a small machine; podman does not need any of it. For `run`, an
 * earlier activation of the same command line left a plan (runtime/prestart-plan.ts writes it once its
 * container was ready): the exact podman executable, argv and environment, what to create first (the
 * runtime directory, two fresh notify directories with their bound sockets) and the files whose change
 * makes the plan stale (the configuration, podsock itself). This program checks the plan, does what it
 * says, starts podman, and tells podsock what it did in PODSOCK_PRESTART:
 *
 *   pid=PID digest=HEX notify=FD:DIR notify=FD:DIR      podman runs; podsock adopts it and the sockets
 *   none REASON                                          nothing was started (no plan yet, stale...)
 *
 * podsock recomputes the podman command itself and adopts the process only if its digest matches;
 * otherwise it kills it and starts its own (runtime/prestart.ts). PODSOCK_PLAN names the plan file so
 * that podsock can write or remove it. Anything unexpected here means "no prestart", never a failure:
 * the slow path is always there. No output unless NODE cannot be executed.
 *
 * Plan file: NUL-terminated tokens, `podsock-plan 1` first, then records:
 *   file PATH SIG    stat(PATH) must give SIG ("dev:ino:size:mtime_ns", or "-" for absent)
 *   mkdir PATH       mkdir -p, then mode 0700
 *   unlink PATH      remove if present (cidfile, pidfile: podman refuses an existing cidfile)
 *   notify DIR MODE  a fresh mkdtemp sibling of DIR with MODE and notify.sock bound in it (SO_PASSCRED);
 *                    every occurrence of DIR in the arguments and environment is replaced by it
 *   fds N            the first N inherited fds (3..) go to podman with LISTEN_PID set; must match LISTEN_FDS
 *   exe PATH, arg A (argv[0] first), env NAME=VALUE (podman's environment without the per-activation
 *   variables, which are taken from this process: INVOCATION_ID, JOURNAL_STREAM, ...)
 * The plan must belong to this user and be writable by nobody else, in a directory of the same kind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "notify-socket.h"

#define PLAN_MAX (1024 * 1024)
#define TOKENS_MAX 65536
#define ARGS_MAX 4096
#define NOTIFY_MAX 4
#define PRESTART_MAX 8192
#define NOTIFY_SOCKET_NAME "notify.sock"
#define MKDTEMP_PREFIX "podsock-"

extern char **environ;

/* Variables that change with every activation: never part of the plan, copied from here into podman's. */
static const char *const PASSED[] = {"INVOCATION_ID=", "JOURNAL_STREAM=", "SYSTEMD_EXEC_PID=", "TRIGGER_", "MONITOR_", NULL};

static int passed_var(const char *entry) {
  for (const char *const *p = PASSED; *p != NULL; p++)
    if (strncmp(entry, *p, strlen(*p)) == 0) return 1;
  return 0;
}

static uint64_t fnv64(uint64_t h, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
  return h;
}

static uint32_t fnv32(uint32_t h, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619U;
  return h;
}

/* The plan's path: podsock's state directory (cli/run.ts stateDirFor) and a hash of SCRIPT ARGS... */
static int plan_path(char *out, size_t size, int n, char **words) {
  char dir[PATH_MAX];
  uid_t uid = getuid();
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  int w;
  if (uid == 0) w = snprintf(dir, sizeof dir, "/run/podsock/state");
  else if (xdg != NULL && xdg[0] != 0) w = snprintf(dir, sizeof dir, "%s/podsock/state", xdg);
  else w = snprintf(dir, sizeof dir, "/tmp/podsock-%u/state", (unsigned)uid);
  if (w < 0 || (size_t)w >= sizeof dir) return -1;
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int i = 0; i < n; i++) h = fnv64(h, words[i], strlen(words[i]) + 1);
  w = snprintf(out, size, "%s/launch-%016llx.plan", dir, (unsigned long long)h);
  return w < 0 || (size_t)w >= size ? -1 : 0;
}

static void file_sig(const char *path, char *out, size_t size) {
  struct stat st;
  if (stat(path, &st) != 0) snprintf(out, size, "-");
  else
    snprintf(out, size, "%llu:%llu:%lld:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, (long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL + (unsigned long long)st.st_mtim.tv_nsec);
}

/* mkdir -p with mode 0700 for what it creates (as mkdirSync(..., { recursive: true, mode: 0o700 })), then 0700 on the last. */
static int mkdir_p(const char *path) {
  char buf[PATH_MAX];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf || path[0] != '/') return -1;
  memcpy(buf, path, n + 1);
  for (char *p = buf + 1; *p != 0; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1;
  return chmod(buf, 0700);
}

typedef struct notify {
  const char *old_dir;
  char dir[PATH_MAX];
  mode_t mode;
  int fd;
} notify_t;

/* mkdtemp beside `n->old_dir`, the socket bound in it (notify-socket.h): as sd/notify-server.ts NotifyServer.create. */
static int make_notify(notify_t *n) {
  const char *slash = strrchr(n->old_dir, '/');
  size_t parent = slash == NULL ? 0 : (size_t)(slash - n->old_dir);
  size_t len = strlen(n->old_dir);
  if (slash == NULL || parent == 0 || len - parent - 1 != strlen(MKDTEMP_PREFIX) + 6 || strncmp(slash + 1, MKDTEMP_PREFIX, strlen(MKDTEMP_PREFIX)) != 0)
    return -1;
  memcpy(n->dir, n->old_dir, parent);
  snprintf(n->dir + parent, sizeof n->dir - parent, "/%sXXXXXX", MKDTEMP_PREFIX);
  if (mkdtemp(n->dir) == NULL) return -1;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  const char *failed = NULL;
  if (snprintf(sun.sun_path, sizeof sun.sun_path, "%s/%s", n->dir, NOTIFY_SOCKET_NAME) >= (int)sizeof sun.sun_path || chmod(n->dir, n->mode) != 0) {
    rmdir(n->dir);
    return -1;
  }
  n->fd = notify_socket_bind(&sun, sizeof sun, &failed);
  if (n->fd < 0 || chmod(sun.sun_path, 0777) != 0) {
    if (n->fd >= 0) close(n->fd);
    n->fd = -1;
    unlink(sun.sun_path);
    rmdir(n->dir);
    return -1;
  }
  return 0;
}

static void unmake_notify(notify_t *n) {
  char path[PATH_MAX + 16];
  if (n->fd < 0) return;
  close(n->fd);
  n->fd = -1;
  snprintf(path, sizeof path, "%s/%s", n->dir, NOTIFY_SOCKET_NAME);
  unlink(path);
  rmdir(n->dir);
}

/* Replace every occurrence of each old notify directory in `s` by its new one (same length: mkdtemp). */
static char *substitute(const char *s, notify_t *nt, int nn) {
  char *copy = strdup(s);
  if (copy == NULL) return NULL;
  for (int i = 0; i < nn; i++) {
    size_t len = strlen(nt[i].old_dir);
    for (char *p = strstr(copy, nt[i].old_dir); p != NULL; p = strstr(p + len, nt[i].old_dir)) memcpy(p, nt[i].dir, len);
  }
  return copy;
}

static char *read_plan(const char *path, size_t *size, const char **why) {
  char dir[PATH_MAX + 64];
  struct stat st;
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash != NULL) *slash = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    *why = errno == ENOENT ? "no plan yet" : "cannot open the plan";
    return NULL;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 022) != 0 || st.st_size <= 0 || st.st_size > PLAN_MAX) {
    *why = "the plan is not a private regular file of this user";
    close(fd);
    return NULL;
  }
  /* The state directory and the one above it (cli/run.ts stateDirFor: /tmp/podsock-UID/state without
   * XDG_RUNTIME_DIR, a name another user can take first) must be real directories of this user that
   * nobody else can write to, as private-files.ts makes them; lstat(2), so a symbolic link is refused. */
  struct stat ds;
  int private_dirs = 1;
  for (int level = 0; level < 2 && private_dirs; level++) {
    if (lstat(dir, &ds) != 0 || !S_ISDIR(ds.st_mode) || ds.st_uid != getuid() || (ds.st_mode & 022) != 0) private_dirs = 0;
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir) break;
    *slash = 0;
  }
  if (!private_dirs) {
    *why = "the plan's directory is not private to this user";
    close(fd);
    return NULL;
  }
  char *buf = malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (buf != NULL && got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  if (buf == NULL || got != (size_t)st.st_size || buf[got - 1] != 0) {
    free(buf);
    *why = "the plan is truncated";
    return NULL;
  }
  *size = got;
  return buf;
}

typedef struct plan {
  const char *exe;
  const char *args[ARGS_MAX + 1];
  int nargs;
  const char *env[ARGS_MAX + 1];
  int nenv;
  const char *mkdirs[8];
  int nmkdirs;
  const char *unlinks[8];
  int nunlinks;
  notify_t notify[NOTIFY_MAX];
  int nnotify;
  long fds;
} plan_t;

/* Parse and check the plan; NULL when it may be carried out, else why not. */
static const char *parse_plan(char *buf, size_t size, plan_t *p) {
  static const char *tok[TOKENS_MAX];
  int nt = 0;
  for (size_t i = 0; i < size; i += strlen(buf + i) + 1) {
    if (nt == TOKENS_MAX) return "the plan is too long";
    tok[nt++] = buf + i;
  }
  if (nt < 2 || strcmp(tok[0], "podsock-plan") != 0 || strcmp(tok[1], "1") != 0) return "the plan has another format";
  memset(p, 0, sizeof *p);
  p->fds = -1;
  char sig[128];
  for (int i = 2; i < nt;) {
    const char *k = tok[i];
    int need = strcmp(k, "file") == 0 || strcmp(k, "notify") == 0 ? 2 : 1;
    if (i + need >= nt) return "the plan ends inside a record";
    const char *a = tok[i + 1], *b = need == 2 ? tok[i + 2] : NULL;
    if (strcmp(k, "file") == 0) {
      file_sig(a, sig, sizeof sig);
      if (strcmp(sig, b) != 0) return "stale: a configuration file or podsock itself changed";
    } else if (strcmp(k, "mkdir") == 0) {
      if (p->nmkdirs == 8) return "the plan has too many directories";
      p->mkdirs[p->nmkdirs++] = a;
    } else if (strcmp(k, "unlink") == 0) {
      if (p->nunlinks == 8) return "the plan has too many files to remove";
      p->unlinks[p->nunlinks++] = a;
    } else if (strcmp(k, "notify") == 0) {
      char *end;
      long mode = strtol(b, &end, 8);
      if (p->nnotify == NOTIFY_MAX || *end != 0 || mode < 0 || mode > 0777 || a[0] != '/') return "the plan has a bad notify record";
      p->notify[p->nnotify].old_dir = a;
      p->notify[p->nnotify].mode = (mode_t)mode;
      p->notify[p->nnotify].fd = -1;
      p->nnotify++;
    } else if (strcmp(k, "fds") == 0) {
      char *end;
      p->fds = strtol(a, &end, 10);
      if (*end != 0 || p->fds < 0 || p->fds > 1024) return "the plan has a bad fd count";
    } else if (strcmp(k, "exe") == 0) {
      if (a[0] != '/') return "the plan's executable is not an absolute path";
      p->exe = a;
    } else if (strcmp(k, "arg") == 0) {
      if (p->nargs == ARGS_MAX) return "the plan has too many arguments";
      p->args[p->nargs++] = a;
    } else if (strcmp(k, "env") == 0) {
      if (p->nenv == ARGS_MAX) return "the plan has too many variables";
      if (strchr(a, '=') == NULL || passed_var(a)) return "the plan has a bad variable";
      p->env[p->nenv++] = a;
    } else {
      return "the plan has an unknown record";
    }
    i += need + 1;
  }
  if (p->exe == NULL || p->nargs == 0 || p->fds < 0) return "the plan is incomplete";
  if (p->fds > 0) {
    const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
    char *end;
    if (fds == NULL || pid == NULL || strtol(fds, &end, 10) != p->fds || *end != 0 || strtol(pid, &end, 10) != (long)getpid() || *end != 0)
      return "the sockets passed differ from the plan's";
  }
  return NULL;
}

/* Carry the plan out: podman's pid, or -1 with `why` set (and nothing left behind). */
static pid_t carry_out(plan_t *p, char *prestart, size_t size, const char **why) {
  static char *argv[ARGS_MAX + 1], *envp[2 * ARGS_MAX + 2];
  static char listen_pid[32];
  int na = 0, ne = 0;
  pid_t pid = -1;
  *why = NULL;
  for (int i = 0; i < p->nmkdirs; i++)
    if (mkdir_p(p->mkdirs[i]) != 0) *why = "cannot create the runtime directory";
  for (int i = 0; *why == NULL && i < p->nunlinks; i++)
    if (unlink(p->unlinks[i]) != 0 && errno != ENOENT) *why = "cannot remove an old cidfile or pidfile";
  for (int i = 0; *why == NULL && i < p->nnotify; i++)
    if (make_notify(&p->notify[i]) != 0) *why = "cannot create a notify socket";
  char *exe = *why == NULL ? substitute(p->exe, p->notify, p->nnotify) : NULL;
  for (int i = 0; *why == NULL && i < p->nargs; i++)
    if ((argv[na++] = substitute(p->args[i], p->notify, p->nnotify)) == NULL) *why = "out of memory";
  for (int i = 0; *why == NULL && i < p->nenv; i++)
    if ((envp[ne++] = substitute(p->env[i], p->notify, p->nnotify)) == NULL) *why = "out of memory";
  for (char **e = environ; *why == NULL && *e != NULL && ne < 2 * ARGS_MAX; e++)
    if (passed_var(*e)) envp[ne++] = *e;
  if (*why == NULL && exe == NULL) *why = "out of memory";
  if (*why == NULL) {
    /* The digest podsock recomputes (runtime/prestart.ts): argv in order, environment in any order. */
    uint32_t h = fnv32(2166136261U, exe, strlen(exe) + 1), x = 0;
    for (int i = 0; i < na; i++) h = fnv32(h, argv[i], strlen(argv[i]) + 1);
    for (int i = 0; i < ne; i++) x ^= fnv32(2166136261U, envp[i], strlen(envp[i]));
    if (p->fds > 0) envp[ne++] = listen_pid;
    argv[na] = NULL;
    envp[ne] = NULL;
    /* `podman run -d` double-forks conmon: as a subreaper (prctl(2); kept across the exec of node) this
     * process becomes conmon's parent, and podsock reads the container's exit status from conmon's. */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    pid = fork();
    if (pid == 0) {
      /* The child: LISTEN_PID is its own pid; fds 3..3+N-1 are the sockets; stdin /dev/null; nothing else. */
      snprintf(listen_pid, sizeof listen_pid, "LISTEN_PID=%d", (int)getpid());
      int null = open("/dev/null", O_RDWR);
      if (null >= 0 && null != 0) {
        dup2(null, 0);
        if (null >= 3 + p->fds) close(null);
      }
      if (syscall(SYS_close_range, (unsigned)(3 + p->fds), ~0U, 0) != 0)
        for (int fd = 3 + (int)p->fds; fd < 4096; fd++) close(fd);
      execve(exe, argv, envp);
      _exit(127);
    }
    if (pid < 0) *why = "fork failed";
    else {
      int w = snprintf(prestart, size, "pid=%d digest=%08x%08x", (int)pid, h, x);
      for (int i = 0; i < p->nnotify && w > 0 && (size_t)w < size; i++) {
        fcntl(p->notify[i].fd, F_SETFD, 0); /* podsock adopts it across the exec */
        w += snprintf(prestart + w, size - (size_t)w, " notify=%d:%s", p->notify[i].fd, p->notify[i].dir);
      }
    }
  }
  if (*why != NULL) {
    for (int i = 0; i < p->nnotify; i++) unmake_notify(&p->notify[i]);
    return -1;
  }
  return pid;
}

/* `#!/usr/bin/env node` in C: the first executable regular file named node on PATH (execvp(3)'s default
 * path when PATH is unset). 0 with `out` set, or -1. */
static int find_node(char *out, size_t size) {
  const char *path = getenv("PATH");
  if (path == NULL || path[0] == 0) path = "/usr/local/bin:/usr/bin:/bin";
  for (const char *p = path; *p != 0;) {
    const char *colon = strchr(p, ':');
    size_t len = colon == NULL ? strlen(p) : (size_t)(colon - p);
    struct stat st;
    if (len > 0 && p[0] == '/' && (size_t)snprintf(out, size, "%.*s/node", (int)len, p) < size && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
        access(out, X_OK) == 0)
      return 0;
    p += len;
    if (*p == ':') p++;
  }
  return -1;
}

/*
 * The installed `podsock` command is a copy of this program named podsock, beside podsock.cjs (dist/bin/,
 * scripts/install-command.mjs puts it there): `podsock ARGS...` runs as `podsock-launch NODE
 * DIR/podsock.cjs ARGS...`, so that a unit saying `ExecStart=podsock run NAME` starts podman from the
 * plan as early as a generated unit does. NODE is found on PATH, as `#!/usr/bin/env node` finds it.
 * Returns the argv to carry on with (NODE SCRIPT ARGS...), or NULL after printing why.
 */
static char **as_podsock(int argc, char **argv, const char *exe) {
  static char node[PATH_MAX], script[PATH_MAX + 16];
  const char *slash = strrchr(exe, '/');
  if (slash == NULL || (size_t)snprintf(script, sizeof script, "%.*s/podsock.cjs", (int)(slash - exe), exe) >= sizeof script) {
    fprintf(stderr, "podsock: the path of this program is too long: %s\n", exe);
    return NULL;
  }
  if (find_node(node, sizeof node) != 0) {
    fprintf(stderr, "podsock: node not found on PATH '%s': install Node.js 20 or newer, or put its directory on PATH\n",
            getenv("PATH") != NULL ? getenv("PATH") : "");
    return NULL;
  }
  char **out = calloc((size_t)argc + 3, sizeof *out);
  if (out == NULL) {
    fprintf(stderr, "podsock: out of memory\n");
    return NULL;
  }
  out[0] = argv[0];
  out[1] = node;
  out[2] = script;
  for (int i = 1; i < argc; i++) out[i + 2] = argv[i];
  out[argc + 2] = NULL;
  return out;
}

/* This program's own file name (of /proc/self/exe, not argv[0], which the caller chooses). */
static int invoked_as_podsock(char *exe, size_t size) {
  ssize_t n = readlink("/proc/self/exe", exe, size - 1);
  if (n <= 0 || (size_t)n >= size - 1) return 0;
  exe[n] = 0;
  const char *base = strrchr(exe, '/');
  return base != NULL && strcmp(base + 1, "podsock") == 0;
}

/*
 * node's options when it runs as the installed command: one V8 worker thread instead of four. A lazy
 * service spends its life waiting; each worker keeps a stack and a malloc arena of its own that the
 * concurrent parts of a collection touch again after podsock gave memory back (src/memory/release.ts).
 */
static const char *const NODE_OPTIONS_AS_PODSOCK[] = {"--v8-pool-size=1", NULL};

/* execv(NODE, [NODE, node options..., SCRIPT, ARGS...]): argv is NODE SCRIPT ARGS... as main() has it. */
static void exec_node(char **argv, const char *const *options) {
  int n = 0, k = 0;
  while (argv[n] != NULL) n++;
  while (options[k] != NULL) k++;
  char **v = calloc((size_t)(n + k + 1), sizeof *v);
  if (v == NULL) return;
  v[0] = argv[0];
  for (int i = 0; i < k; i++) v[1 + i] = (char *)options[i];
  for (int i = 1; i < n; i++) v[k + i] = argv[i];
  execv(v[0], v);
  free(v);
}

int main(int argc, char **argv) {
  static char exe[PATH_MAX];
  static const char *const no_options[] = {NULL};
  const char *const *node_options = no_options;
  if (invoked_as_podsock(exe, sizeof exe)) {
    argv = as_podsock(argc, argv, exe);
    if (argv == NULL) return 127;
    argc += 2;
    node_options = NODE_OPTIONS_AS_PODSOCK;
  }
  if (argc < 3) {
    fprintf(stderr, "Usage: podsock-launch NODE SCRIPT [ARGS...]: starts podman from the plan of an earlier `run`, then runs NODE SCRIPT ARGS...\n");
    return 2;
  }
  static char plan[PATH_MAX + 64], prestart[PRESTART_MAX];
  static plan_t p;
  pid_t pid = -1;
  unsetenv("PODSOCK_PLAN");
  unsetenv("PODSOCK_PRESTART");
  if (argc >= 4 && strcmp(argv[3], "run") == 0 && plan_path(plan, sizeof plan, argc - 2, argv + 2) == 0) {
    const char *why = NULL;
    size_t size = 0;
    char *buf = read_plan(plan, &size, &why);
    if (buf != NULL && (why = parse_plan(buf, size, &p)) == NULL) pid = carry_out(&p, prestart, sizeof prestart, &why);
    if (pid < 0) snprintf(prestart, sizeof prestart, "none %s", why != NULL ? why : "unknown");
    setenv("PODSOCK_PLAN", plan, 1);
    setenv("PODSOCK_PRESTART", prestart, 1);
  }
  exec_node(argv + 1, node_options);
  int err = errno;
  fprintf(stderr, "podsock-launch: cannot execute %s: %s\n", argv[1], strerror(err));
  if (pid > 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
  }
  return 127;
}
