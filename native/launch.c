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
 * the slow path is always there. No output unless NODE cannot be executed or the plan is malformed
 * (one line on stderr, "podsock-launch: ignoring the plan 'PATH': REASON").
 *
 * The plan's format and bounds: plan.h. Its file must belong to this user and be writable by nobody
 * else, in a directory of the same kind; its `file` records must match, and its fd count LISTEN_FDS.
 * The per-activation variables (INVOCATION_ID, JOURNAL_STREAM, ...) are never in a plan: they are taken
 * from this process.
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

#include "command-digest.h"
#include "notify-socket.h"
#include "plan.h"

#define PRESTART_MAX 8192
/* Per-activation variables copied from this process into podman's environment (plan_passed_var). */
#define PASSED_MAX 256

extern char **environ;

static uint64_t fnv64(uint64_t h, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
  return h;
}

/* The plan's path: podsock's state directory (cli/run.ts stateDirFor) and a hash of SCRIPT ARGS... (a
 * name only: whatever the plan says, podsock adopts the podman it starts only by its command's digest). */
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
  /* As private-files.ts privateDir: a real directory of this user that nobody else can write to (a link
   * planted in a sticky /tmp cannot be swapped after the lstat, whose owner alone can rename it). */
  struct stat st;
  if (lstat(buf, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 022) != 0) return -1;
  return chmod(buf, 0700);
}

/* mkdtemp from the template the plan's parser made beside the old directory (plan.h), the socket bound
 * in it (notify-socket.h): as sd/notify-server.ts NotifyServer.create. */
static int make_notify(plan_notify_t *n) {
  if (mkdtemp(n->dir) == NULL) return -1;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  const char *failed = NULL;
  if (snprintf(sun.sun_path, sizeof sun.sun_path, "%s/%s", n->dir, PLAN_NOTIFY_SOCKET_NAME) >= (int)sizeof sun.sun_path || chmod(n->dir, n->mode) != 0) {
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

static void unmake_notify(plan_notify_t *n) {
  char path[sizeof n->dir + sizeof PLAN_NOTIFY_SOCKET_NAME + 1];
  if (n->fd < 0) return;
  close(n->fd);
  n->fd = -1;
  snprintf(path, sizeof path, "%s/%s", n->dir, PLAN_NOTIFY_SOCKET_NAME);
  unlink(path);
  rmdir(n->dir);
}

/* The plan's bytes (malloc), or NULL with `why` set; `*bad` set when the plan is malformed rather than absent or foreign. */
static char *read_plan(const char *path, size_t *size, const char **why, char whybuf[PLAN_WHY_MAX], int *bad) {
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
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 022) != 0) {
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
  if (st.st_size <= 0 || st.st_size > PLAN_MAX) {
    snprintf(whybuf, PLAN_WHY_MAX, "the plan is %lld bytes long, expected 1 to %d", (long long)st.st_size, PLAN_MAX);
    *why = whybuf;
    *bad = 1;
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
  if (buf == NULL || got != (size_t)st.st_size) {
    free(buf);
    *why = "the plan is truncated";
    return NULL;
  }
  *size = got;
  return buf;
}

/* What the plan's parser cannot check: its files unchanged, and the sockets passed as it expects. NULL when it may be carried out. */
static const char *check_plan(const plan_t *p) {
  char sig[128];
  for (int i = 0; i < p->nfiles; i++) {
    file_sig(p->files[i].path, sig, sizeof sig);
    if (strcmp(sig, p->files[i].sig) != 0) return "stale: a configuration file or podsock itself changed";
  }
  if (p->fds > 0) {
    const char *fds = getenv("LISTEN_FDS"), *pid = getenv("LISTEN_PID");
    char *end;
    if (fds == NULL || pid == NULL || strtol(fds, &end, 10) != p->fds || *end != 0 || strtol(pid, &end, 10) != (long)getpid() || *end != 0)
      return "the sockets passed differ from the plan's";
  }
  return NULL;
}

/* Carry the plan out: podman's pid, or -1 with `why` set (and nothing left behind); `*bad` when that is worth a line on stderr. */
static pid_t carry_out(plan_t *p, char *prestart, size_t size, const char **why, char whybuf[PLAN_WHY_MAX], int *bad) {
  static char *argv[PLAN_ARGS_MAX + 1], *envp[PLAN_ENV_MAX + PASSED_MAX + 2];
  static char listen_pid[32];
  char digest[COMMAND_DIGEST_HEX + 1];
  int na = 0, ne = 0;
  pid_t pid = -1;
  *why = NULL;
  for (int i = 0; i < p->nmkdirs; i++)
    if (mkdir_p(p->mkdirs[i]) != 0) *why = "cannot create the runtime directory";
  for (int i = 0; *why == NULL && i < p->nunlinks; i++)
    if (unlink(p->unlinks[i]) != 0 && errno != ENOENT) *why = "cannot remove an old cidfile or pidfile";
  for (int i = 0; *why == NULL && i < p->nnotify; i++)
    if (make_notify(&p->notify[i]) != 0) *why = "cannot create a notify socket";
  char *exe = *why == NULL ? plan_substitute(p->exe, p->notify, p->nnotify) : NULL;
  for (int i = 0; *why == NULL && i < p->nargs; i++)
    if ((argv[na++] = plan_substitute(p->args[i], p->notify, p->nnotify)) == NULL) *why = "out of memory";
  for (int i = 0; *why == NULL && i < p->nenv; i++)
    if ((envp[ne++] = plan_substitute(p->env[i], p->notify, p->nnotify)) == NULL) *why = "out of memory";
  for (char **e = environ; *why == NULL && *e != NULL; e++)
    if (plan_passed_var(*e) && ne - p->nenv == PASSED_MAX) *why = "there are too many per-activation variables (TRIGGER_*, MONITOR_*...)";
    else if (plan_passed_var(*e)) envp[ne++] = *e;
  if (*why == NULL && exe == NULL) *why = "out of memory";
  /* The digest podsock recomputes (runtime/prestart.ts commandDigest), LISTEN_PID left out. */
  int r = *why == NULL ? command_digest(exe, (const char *const *)argv, na, (const char *const *)envp, ne, digest, whybuf) : 0;
  if (r != 0) {
    *why = r == -ENOMEM ? "out of memory" : whybuf;
    *bad = r != -ENOMEM;
  }
  if (*why == NULL) {
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
      int w = snprintf(prestart, size, "pid=%d digest=%s", (int)pid, digest);
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
  static char plan[PATH_MAX + 64], prestart[PRESTART_MAX], whybuf[PLAN_WHY_MAX];
  static plan_t p;
  pid_t pid = -1;
  unsetenv("PODSOCK_PLAN");
  unsetenv("PODSOCK_PRESTART");
  if (argc >= 4 && strcmp(argv[3], "run") == 0 && plan_path(plan, sizeof plan, argc - 2, argv + 2) == 0) {
    const char *why = NULL;
    size_t size = 0;
    int bad = 0;
    char *buf = read_plan(plan, &size, &why, whybuf, &bad);
    if (buf != NULL && plan_parse(buf, size, &p, whybuf) != 0) {
      why = whybuf;
      bad = 1;
    } else if (buf != NULL && (why = check_plan(&p)) == NULL)
      pid = carry_out(&p, prestart, sizeof prestart, &why, whybuf, &bad);
    if (bad) fprintf(stderr, "podsock-launch: ignoring the plan '%s': %s\n", plan, why);
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
