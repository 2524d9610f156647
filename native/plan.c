/*
 * Parsing and checking the plan (plan.h). Every field is bounded before it is used: a plan is a file
 * that anyone who can write podsock's state directory controls, and podsock-launch runs before any
 * other check.
 */
#define _GNU_SOURCE
#include "plan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command-digest.h"

/* Variables that change with every activation: never part of the plan, copied from the launcher's environment. */
static const char *const PASSED[] = {"INVOCATION_ID=", "JOURNAL_STREAM=", "SYSTEMD_EXEC_PID=", "TRIGGER_", "MONITOR_", NULL};

int plan_passed_var(const char *entry) {
  for (const char *const *p = PASSED; *p != NULL; p++)
    if (strncmp(entry, *p, strlen(*p)) == 0) return 1;
  return 0;
}

void plan_quote(char *out, size_t size, const char *s, size_t n) {
  static const size_t SHOWN = 48;
  size_t o = 0;
  for (size_t i = 0; i < n && i < SHOWN && o + 1 < size; i++) out[o++] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'' ? s[i] : '?';
  for (const char *dots = n > SHOWN ? "..." : ""; *dots != 0 && o + 1 < size; dots++) out[o++] = *dots;
  if (size > 0) out[o] = 0;
}

static int fail(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char *why, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, PLAN_WHY_MAX, fmt, ap);
  va_end(ap);
  return -EINVAL;
}

/* A decimal or octal number of 1 to `digits` digits, at most `max`; -1 otherwise (strtol(3) would take signs, spaces and overflow). */
static long number(const char *s, int base, size_t digits, long max) {
  size_t n = strlen(s);
  long v = 0;
  if (n == 0 || n > digits) return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] >= '0' + base) return -1;
    v = v * base + (s[i] - '0');
  }
  return v <= max ? v : -1;
}

/* The mkdtemp(3) template beside `dir` ("PARENT/podsock-XXXXXX"), or -EINVAL: the old unchecked copy lives here, bounded. */
static int notify_template(plan_notify_t *n, const char *dir, char *why) {
  size_t len = strlen(dir), name = sizeof PLAN_NOTIFY_PREFIX - 1 + 6;
  const char *slash = strrchr(dir, '/');
  char q[64];
  plan_quote(q, sizeof q, dir, len);
  if (len > PLAN_NOTIFY_DIR_MAX)
    return fail(why, "the plan's notify directory '%s' is %zu bytes long, expected at most %zu (its socket path must fit sun_path, unix(7))", q, len,
                (size_t)PLAN_NOTIFY_DIR_MAX);
  if (dir[0] != '/' || slash == NULL || slash == dir || len - (size_t)(slash - dir) - 1 != name ||
      strncmp(slash + 1, PLAN_NOTIFY_PREFIX, sizeof PLAN_NOTIFY_PREFIX - 1) != 0)
    return fail(why, "the plan's notify directory '%s' is not an absolute path ending in /" PLAN_NOTIFY_PREFIX "XXXXXX", q);
  size_t parent = (size_t)(slash - dir);
  memcpy(n->dir, dir, parent);
  memcpy(n->dir + parent, "/" PLAN_NOTIFY_PREFIX "XXXXXX", name + 2);
  n->old_dir = dir;
  return 0;
}

/* Reading the plan word by word: `at` is the offset of the next word, `word` the count of words read. */
typedef struct cursor {
  const char *buf;
  size_t size, at, word;
} cursor_t;

/* The next word into `out`: 0, 1 at the end of the plan, or -EINVAL for a word that is too long. */
static int next_word(cursor_t *c, const char **out, char *why) {
  if (c->at >= c->size) return 1;
  size_t len = strlen(c->buf + c->at); /* the plan ends with a NUL */
  if (len > PLAN_WORD_MAX) return fail(why, "the plan's word %zu is %zu bytes long, expected at most %d", c->word + 1, len, PLAN_WORD_MAX);
  *out = c->buf + c->at;
  c->at += len + 1;
  c->word++;
  return 0;
}

/* The words of one record after its keyword `k`, or why not. */
static int record_words(cursor_t *c, const char *k, const char **w, int n, char *why) {
  char q[64];
  for (int i = 0; i < n; i++) {
    int r = next_word(c, &w[i], why);
    if (r < 0) return r;
    if (r > 0) {
      plan_quote(q, sizeof q, k, strlen(k));
      return fail(why, "the plan ends inside a record ('%s')", q);
    }
  }
  return 0;
}

int plan_parse(const char *buf, size_t size, plan_t *p, char why[PLAN_WHY_MAX]) {
  memset(p, 0, sizeof *p);
  p->fds = -1;
  if (size > PLAN_MAX) return fail(why, "the plan is %zu bytes long, expected at most %d", size, PLAN_MAX);
  if (size == 0 || buf[size - 1] != 0) return fail(why, "the plan is truncated: it does not end with a NUL byte");
  cursor_t c = {.buf = buf, .size = size};
  const char *w[2], *k = NULL;
  char q[64];
  int r = record_words(&c, "podsock-plan", w, 2, why);
  if (r != 0) return r;
  if (strcmp(w[0], "podsock-plan") != 0 || strcmp(w[1], "1") != 0) return fail(why, "the plan has another format (expected 'podsock-plan 1')");
  while ((r = next_word(&c, &k, why)) == 0) {
    int need = strcmp(k, "file") == 0 || strcmp(k, "notify") == 0 ? 2 : 1;
    if ((r = record_words(&c, k, w, need, why)) != 0) return r;
    const char *a = w[0], *b = need == 2 ? w[1] : NULL;
    size_t alen = strlen(a);
    int path = strcmp(k, "file") == 0 || strcmp(k, "mkdir") == 0 || strcmp(k, "unlink") == 0 || strcmp(k, "exe") == 0;
    plan_quote(q, sizeof q, a, alen);
    if (path && (alen == 0 || alen > PLAN_PATH_MAX))
      return fail(why, "the plan's %s path '%s' is %zu bytes long, expected 1 to %d", k, q, alen, PLAN_PATH_MAX);
    if (path && strcmp(k, "file") != 0 && a[0] != '/') return fail(why, "the plan's %s path '%s' is not absolute", k, q);
    if (strcmp(k, "file") == 0) {
      if (p->nfiles == PLAN_FILES_MAX) return fail(why, "the plan has more than %d files to check", PLAN_FILES_MAX);
      p->files[p->nfiles++] = (plan_file_t){a, b};
    } else if (strcmp(k, "mkdir") == 0) {
      if (p->nmkdirs == PLAN_MKDIRS_MAX) return fail(why, "the plan has more than %d directories to create", PLAN_MKDIRS_MAX);
      p->mkdirs[p->nmkdirs++] = a;
    } else if (strcmp(k, "unlink") == 0) {
      if (p->nunlinks == PLAN_UNLINKS_MAX) return fail(why, "the plan has more than %d files to remove", PLAN_UNLINKS_MAX);
      p->unlinks[p->nunlinks++] = a;
    } else if (strcmp(k, "notify") == 0) {
      if (p->nnotify == PLAN_NOTIFY_MAX) return fail(why, "the plan has more than %d notify sockets", PLAN_NOTIFY_MAX);
      plan_notify_t *n = &p->notify[p->nnotify];
      if (notify_template(n, a, why) != 0) return -EINVAL;
      long mode = number(b, 8, 4, 0777);
      plan_quote(q, sizeof q, b, strlen(b));
      if (mode < 0) return fail(why, "the plan's notify mode '%s' is not an octal mode up to 0777", q);
      n->mode = (mode_t)mode;
      n->fd = -1;
      p->nnotify++;
    } else if (strcmp(k, "fds") == 0) {
      long fds = number(a, 10, 4, PLAN_FDS_MAX);
      if (p->fds >= 0) return fail(why, "the plan gives the fd count twice");
      if (fds < 0) return fail(why, "the plan's fd count '%s' is not a number from 0 to %d", q, PLAN_FDS_MAX);
      p->fds = (int)fds;
    } else if (strcmp(k, "exe") == 0) {
      if (p->exe != NULL) return fail(why, "the plan names the executable twice");
      p->exe = a;
    } else if (strcmp(k, "arg") == 0) {
      if (p->nargs == PLAN_ARGS_MAX) return fail(why, "the plan has more than %d arguments", PLAN_ARGS_MAX);
      p->args[p->nargs++] = a;
    } else if (strcmp(k, "env") == 0) {
      if (p->nenv == PLAN_ENV_MAX) return fail(why, "the plan has more than %d variables", PLAN_ENV_MAX);
      size_t name = (size_t)(strchrnul(a, '=') - a);
      if (a[name] != '=' || name == 0) return fail(why, "the plan's variable '%s' is not NAME=VALUE", q);
      if (plan_passed_var(a)) return fail(why, "the plan's variable '%s' is one taken from each activation", q);
      p->env[p->nenv++] = a;
    } else {
      plan_quote(q, sizeof q, k, strlen(k));
      return fail(why, "the plan has an unknown record '%s'", q);
    }
  }
  if (r < 0) return r;
  if (p->exe == NULL || p->nargs == 0 || p->fds < 0) return fail(why, "the plan is incomplete: it needs exe, arg and fds");
  /* Sorted, a name given twice sits next to itself. */
  command_env_sort(p->env, (size_t)p->nenv);
  for (int i = 1; i < p->nenv; i++)
    if (command_env_cmp(p->env[i - 1], p->env[i]) == 0) {
      plan_quote(q, sizeof q, p->env[i], (size_t)(strchrnul(p->env[i], '=') - p->env[i]));
      return fail(why, "the plan sets the variable '%s' twice", q);
    }
  return 0;
}

char *plan_substitute(const char *s, const plan_notify_t *nt, int nn) {
  char *copy = strdup(s);
  if (copy == NULL) return NULL;
  for (int i = 0; i < nn; i++) {
    size_t len = strlen(nt[i].old_dir);
    for (char *p = strstr(copy, nt[i].old_dir); p != NULL; p = strstr(p + len, nt[i].old_dir)) memcpy(p, nt[i].dir, len);
  }
  return copy;
}
