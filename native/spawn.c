/*
 * Starting `podman run` without fork(): vfork(2), as glibc's posix_spawn(3) does (clone(CLONE_VM |
 * CLONE_VFORK)), so the child borrows podsock's memory until it execs instead of copying the page
 * tables of a Node heap; unlike posix_spawn it can set LISTEN_PID to its own pid before the exec, which
 * saves the shell that used to do it. libuv's uv_spawn forks; on a busy 2-core machine
 * that fork and the child's set-up before exec took 10-40 ms, on the path of the first request.
 *
 * The exit is learnt from a pidfd (pidfd_open(2), Linux 5.3) polled by libuv: readable once the child
 * has exited, then reaped with waitpid(WNOHANG). libuv reaps only the children it spawned itself
 * (uv__wait_children waits for each pid in its own list), so it never takes this exit status away.
 *
 * The child gets: fds 0..n-1 from `stdio` (-1 = /dev/null) and no other fd (closefrom, glibc 2.34), every signal at its default disposition and an empty signal mask (Node ignores
 * SIGPIPE, and an ignored disposition survives exec), the given environment and argv.
 */
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <signal.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "internal.h"
#include "spawn.h"

/* Bounds on what JS may pass: podman's argv and environment are far below these. */
#define SPAWN_MAX_ARGS 4096
#define SPAWN_MAX_STDIO 256
#define SPAWN_MAX_STRING (1024 * 1024)

typedef struct child {
  napi_env env;
  napi_ref callback;
  napi_async_context actx;
  uv_poll_t poll;
  int pidfd;
  pid_t pid;
  bool exited;
  /* Freed when both the JS handle is collected and the poll handle is closed. */
  int refs;
} child_t;

static void child_unref(child_t *c) {
  if (--c->refs == 0) free(c);
}

static void free_strings(char **v) {
  if (v == NULL) return;
  for (char **p = v; *p != NULL; p++) free(*p);
  free(v);
}

/* A JS array of strings as a NULL-terminated C vector (caller frees with free_strings). */
static char **string_vector(napi_env env, napi_value array, const char *what) {
  bool is_array = false;
  uint32_t n = 0;
  if (napi_is_array(env, array, &is_array) != napi_ok || !is_array || napi_get_array_length(env, array, &n) != napi_ok ||
      n > SPAWN_MAX_ARGS) {
    char message[128];
    snprintf(message, sizeof message, "podsock_native: %s must be an array of at most %d strings", what, SPAWN_MAX_ARGS);
    napi_throw_type_error(env, "EINVAL", message);
    return NULL;
  }
  char **v = calloc(n + 1, sizeof *v);
  if (v == NULL) {
    napi_throw_error(env, "ENOMEM", "podsock_native: out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value item;
    size_t len = 0;
    napi_valuetype t;
    if (napi_get_element(env, array, i, &item) != napi_ok || napi_typeof(env, item, &t) != napi_ok || t != napi_string ||
        napi_get_value_string_utf8(env, item, NULL, 0, &len) != napi_ok || len > SPAWN_MAX_STRING) {
      char message[128];
      snprintf(message, sizeof message, "podsock_native: %s[%u] must be a string of at most %d bytes", what, i, SPAWN_MAX_STRING);
      napi_throw_type_error(env, "EINVAL", message);
      free_strings(v);
      return NULL;
    }
    v[i] = malloc(len + 1);
    if (v[i] == NULL || napi_get_value_string_utf8(env, item, v[i], len + 1, &len) != napi_ok || strlen(v[i]) != len) {
      /* An embedded NUL would silently cut the value: refuse it. */
      napi_throw_type_error(env, "EINVAL", "podsock_native: argv and environment strings must not contain NUL");
      free_strings(v);
      return NULL;
    }
  }
  return v;
}

static void on_poll_closed(uv_handle_t *h) {
  child_t *c = h->data;
  close(c->pidfd);
  c->pidfd = -1;
  child_unref(c);
}

static void on_child_readable(uv_poll_t *poll, int status, int events) {
  child_t *c = poll->data;
  int wstatus = 0;
  pid_t r;
  do r = waitpid(c->pid, &wstatus, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == 0) return; /* not yet: a spurious wake-up */
  int code = -1, sig = 0;
  if (r == c->pid) {
    if (WIFEXITED(wstatus)) code = WEXITSTATUS(wstatus);
    else if (WIFSIGNALED(wstatus)) sig = WTERMSIG(wstatus);
  } /* else ECHILD: reaped elsewhere (SIGCHLD ignored); the status is lost, report code -1. */
  c->exited = true;
  uv_poll_stop(poll);
  uv_close((uv_handle_t *)poll, on_poll_closed);

  napi_env env = c->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, global, argv[2];
  if (napi_get_reference_value(env, c->callback, &callback) == napi_ok && callback != NULL &&
      napi_get_global(env, &global) == napi_ok && napi_create_int32(env, code, &argv[0]) == napi_ok &&
      napi_create_int32(env, sig, &argv[1]) == napi_ok) {
    napi_make_callback(env, c->actx, global, callback, 2, argv, NULL);
  }
  napi_delete_reference(env, c->callback);
  c->callback = NULL;
  napi_async_destroy(env, c->actx);
  napi_close_handle_scope(env, scope);
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  child_unref(data);
}

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

/* nativeSpawnSupported(): whether pidfd_open works here (Linux 5.3 and later, not blocked by seccomp). */
static napi_value js_spawn_supported(napi_env env, napi_callback_info info) {
  static int supported = -1;
  if (supported < 0) {
    int fd = pidfd_open_(getpid());
    supported = fd >= 0;
    if (fd >= 0) close(fd);
  }
  napi_value v;
  napi_get_boolean(env, supported == 1, &v);
  return v;
}

/* Watch child `pid` through a pidfd; onExit is `callback`. Returns {pid, handle}, or NULL with an exception
 * pending (the child is then killed and reaped: never an unwatched child). */
static napi_value track_child(napi_env env, pid_t pid, napi_value callback) {
  child_t *c = calloc(1, sizeof *c);
  int pidfd = pidfd_open_(pid);
  uv_loop_t *loop = NULL;
  if (c == NULL || pidfd < 0 || napi_get_uv_event_loop(env, &loop) != napi_ok || uv_poll_init(loop, &c->poll, pidfd) != 0) {
    /* Cannot watch it: do not leave an unwatched child behind. */
    int e = pidfd < 0 ? errno : ENOMEM;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    if (pidfd >= 0) close(pidfd);
    free(c);
    throw_errno(env, "pidfd_open", e);
    return NULL;
  }
  c->env = env;
  c->pid = pid;
  c->pidfd = pidfd;
  c->refs = 2; /* the JS handle and the poll handle */
  c->poll.data = c;
  napi_value name, handle, result, pid_v;
  if (napi_create_reference(env, callback, 1, &c->callback) != napi_ok ||
      napi_create_string_utf8(env, "podsock:process", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &c->actx) != napi_ok ||
      napi_create_external(env, c, finalize_handle, NULL, &handle) != napi_ok || napi_create_object(env, &result) != napi_ok ||
      napi_create_int32(env, pid, &pid_v) != napi_ok) {
    /* Out of JS resources right after the spawn: nothing sensible remains but to stop the child. */
    kill(pid, SIGKILL);
    napi_throw_error(env, "ENOMEM", "podsock_native: cannot track the spawned process");
    return NULL;
  }
  napi_set_named_property(env, result, "pid", pid_v);
  napi_set_named_property(env, result, "handle", handle);
  uv_poll_start(&c->poll, UV_READABLE, on_child_readable);
  return result;
}

/*
 * spawnProcess(file, argv, envp, stdio, onExit[, listenPid]) -> { pid, handle }
 * listenPid: add LISTEN_PID=<the child's pid> to the environment.
 * onExit(code, signal): code is the exit status (or -1), signal the terminating signal number (or 0).
 * Throws with the errno of a failed exec (ENOENT, EACCES...) without calling onExit.
 */
static napi_value js_spawn_process(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value a[6];
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 5) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: spawnProcess(file, argv, envp, stdio, onExit[, listenPid])");
    return NULL;
  }
  napi_valuetype t;
  char file[4096];
  size_t file_len = 0;
  if (napi_typeof(env, a[0], &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, a[0], file, sizeof file, &file_len) != napi_ok || file_len == 0 ||
      file_len >= sizeof file - 1) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: file must be a non-empty path shorter than 4095 bytes");
    return NULL;
  }
  if (napi_typeof(env, a[4], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: onExit must be a function");
    return NULL;
  }
  bool is_array = false;
  uint32_t nstdio = 0;
  if (napi_is_array(env, a[3], &is_array) != napi_ok || !is_array || napi_get_array_length(env, a[3], &nstdio) != napi_ok ||
      nstdio < 3 || nstdio > SPAWN_MAX_STDIO) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: stdio must be an array of 3 to 256 fds (-1 for /dev/null)");
    return NULL;
  }
  int stdio[SPAWN_MAX_STDIO];
  for (uint32_t i = 0; i < nstdio; i++) {
    napi_value item;
    if (napi_get_element(env, a[3], i, &item) != napi_ok || napi_typeof(env, item, &t) != napi_ok || t != napi_number ||
        napi_get_value_int32(env, item, &stdio[i]) != napi_ok || stdio[i] < -1) {
      napi_throw_type_error(env, "EINVAL", "podsock_native: stdio entries must be fds or -1");
      return NULL;
    }
  }
  char **argv = string_vector(env, a[1], "argv");
  if (argv == NULL) return NULL;
  char **envp = string_vector(env, a[2], "envp");
  if (envp == NULL) {
    free_strings(argv);
    return NULL;
  }

  /* LISTEN_PID (sd_listen_fds(3)) must be the pid of the process that reads LISTEN_FDS: podman. Only
   * the child knows it before exec, so the child writes it into a slot reserved here. */
  bool listen_pid = false;
  if (argc >= 6) napi_get_value_bool(env, a[5], &listen_pid);
  char listen_pid_buf[32] = "LISTEN_PID=";
  char **envp_full = envp;
  if (listen_pid) {
    size_t n = 0;
    while (envp[n] != NULL) n++;
    envp_full = calloc(n + 2, sizeof *envp_full);
    if (envp_full == NULL) {
      free_strings(argv);
      free_strings(envp);
      napi_throw_error(env, "ENOMEM", "podsock_native: out of memory");
      return NULL;
    }
    memcpy(envp_full, envp, n * sizeof *envp);
    envp_full[n] = listen_pid_buf;
  }

  /* Every source fd is first duplicated (close-on-exec) to a number >= nstdio, so that the dup2s to
   * 0..nstdio-1 in the child can never overwrite a source that another dup2 still needs. dup2 to a
   * different number clears close-on-exec on the target; the duplicates vanish at exec. */
  int tmp[SPAWN_MAX_STDIO];
  int err = 0;
  uint32_t ntmp = 0;
  for (; ntmp < nstdio; ntmp++) {
    tmp[ntmp] = -1;
    if (stdio[ntmp] >= 0 && (tmp[ntmp] = fcntl(stdio[ntmp], F_DUPFD_CLOEXEC, (int)nstdio)) < 0) {
      err = errno;
      break;
    }
  }
  pid_t pid = -1;
  if (err == 0) {
    /* vfork: the child borrows this thread's memory and stack until it execs (no copy of the Node
     * heap's page tables), the same clone(CLONE_VM | CLONE_VFORK) glibc's posix_spawn uses. The child
     * runs only async-signal-safe calls on values prepared above. All signals are blocked around it,
     * so that no handler of podsock's runs in the child before it has reset them. */
    volatile int child_err = 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = vfork();
    if (pid == 0) {
      for (uint32_t i = 0; i < nstdio; i++) {
        if (tmp[i] >= 0) {
          if (dup2(tmp[i], (int)i) < 0) goto fail;
        } else {
          int fd = open("/dev/null", O_RDWR);
          if (fd < 0) goto fail;
          if (fd != (int)i) {
            if (dup2(fd, (int)i) < 0) goto fail;
            close(fd);
          }
        }
      }
      /* Then no other fd: one some library opened without close-on-exec must not reach podman. */
      if (syscall(SYS_close_range, nstdio, ~0U, 0) != 0)
        for (int fd = (int)nstdio; fd < 4096; fd++) close(fd);
      struct sigaction dfl;
      memset(&dfl, 0, sizeof dfl);
      dfl.sa_handler = SIG_DFL;
      for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL); /* 32, 33 belong to libc: EINVAL */
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, NULL);
      if (listen_pid) {
        /* "LISTEN_PID=" then the decimal pid, written without snprintf (not async-signal-safe). */
        char digits[16];
        int nd = 0;
        for (unsigned long v = (unsigned long)getpid(); v > 0 || nd == 0; v /= 10) digits[nd++] = (char)('0' + v % 10);
        char *out = listen_pid_buf + 11;
        while (nd > 0) *out++ = digits[--nd];
        *out = 0;
      }
      execve(file, argv, envp_full);
    fail:
      child_err = errno;
      _exit(127);
    }
    if (pid < 0) err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid > 0 && child_err != 0) {
      /* The exec failed: the child has already exited; reap it and report why. */
      err = child_err;
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
      }
    }
  }
  for (uint32_t i = 0; i < ntmp; i++)
    if (tmp[i] >= 0) close(tmp[i]);
  if (envp_full != envp) free(envp_full);
  free_strings(argv);
  free_strings(envp);
  if (err != 0) {
    throw_errno(env, "spawn", err);
    return NULL;
  }

  return track_child(env, pid, a[4]);
}

/* killProcess(handle, signal) -> bool: false once the child has exited (no signal goes to a reused pid). */
static napi_value js_kill_process(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  void *data = NULL;
  int32_t sig = 0;
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 2 || napi_get_value_external(env, a[0], &data) != napi_ok ||
      data == NULL || napi_get_value_int32(env, a[1], &sig) != napi_ok || sig < 0 || sig >= NSIG) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: killProcess(handle, signal number)");
    return NULL;
  }
  child_t *c = data;
  bool sent = false;
  if (!c->exited && c->pidfd >= 0) {
    /* Through the pidfd: it names this child even if the pid were somehow reused. */
    if (syscall(SYS_pidfd_send_signal, c->pidfd, sig, NULL, 0) == 0) sent = true;
    else if (errno != ESRCH) {
      throw_errno(env, "pidfd_send_signal", errno);
      return NULL;
    }
  }
  napi_get_boolean(env, sent, &result);
  return result;
}

/* adoptProcess(pid, onExit[, keepAlive = true]) -> {pid, handle}: watch a child this process already has
 * (podman, started by podsock-launch before it exec'd Node; conmon, reparented to this subreaper), as if
 * spawnProcess had started it. keepAlive false: the watch does not keep Node's loop alive (a helper
 * process of podman's that is only reaped). ECHILD unless `pid` is a child of this process that has not
 * been reaped. */
static napi_value js_adopt_process(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value a[3];
  int32_t pid = 0;
  napi_valuetype t;
  bool keep_alive = true;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 2 || napi_get_value_int32(env, a[0], &pid) != napi_ok || pid <= 0 ||
      napi_typeof(env, a[1], &t) != napi_ok || t != napi_function || (argc >= 3 && napi_get_value_bool(env, a[2], &keep_alive) != napi_ok)) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: adoptProcess(pid, onExit[, keepAlive])");
    return NULL;
  }
  siginfo_t si;
  memset(&si, 0, sizeof si);
  /* WNOWAIT: only ask; ECHILD when it is not our child (or already reaped). */
  if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
    throw_errno(env, "adopt process", errno);
    return NULL;
  }
  napi_value result = track_child(env, (pid_t)pid, a[1]);
  if (result != NULL && !keep_alive) {
    napi_value handle;
    void *data = NULL;
    if (napi_get_named_property(env, result, "handle", &handle) == napi_ok && napi_get_value_external(env, handle, &data) == napi_ok && data != NULL)
      uv_unref((uv_handle_t *)&((child_t *)data)->poll);
  }
  return result;
}

/* setChildSubreaper(on) -> void: PR_SET_CHILD_SUBREAPER (prctl(2)). While it is on, a process whose parent
 * dies below this one is reparented here instead of to init: `podman run -d` double-forks conmon, and
 * podsock, as conmon's reaper, learns the container's exit status from conmon's own (conmon exits with
 * it once `podman container cleanup` has run: conmon src/conmon.c, src/ctr_exit.c do_exit_command). */
static napi_value js_set_child_subreaper(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  bool on = false;
  if (napi_get_cb_info(env, info, &argc, a, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_bool(env, a[0], &on) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "podsock_native: setChildSubreaper(on)");
    return NULL;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, on ? 1 : 0, 0, 0, 0) != 0) {
    throw_errno(env, "prctl(PR_SET_CHILD_SUBREAPER)", errno);
    return NULL;
  }
  return NULL;
}

napi_status podsock_spawn_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"spawnSupported", NULL, js_spawn_supported, NULL, NULL, NULL, napi_enumerable, NULL},
      {"spawnProcess", NULL, js_spawn_process, NULL, NULL, NULL, napi_enumerable, NULL},
      {"killProcess", NULL, js_kill_process, NULL, NULL, NULL, napi_enumerable, NULL},
      {"adoptProcess", NULL, js_adopt_process, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setChildSubreaper", NULL, js_set_child_subreaper, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
