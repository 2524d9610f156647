/*
 * The podman command's digest (command-digest.h). Every field is length-prefixed, so that no two
 * different commands encode alike (unlike joining words with NUL or XOR-ing per-variable hashes, where
 * duplicates cancel), and the environment is sorted by name, so that its order does not matter while a
 * name given twice, which getenv(3) would read only once, is refused rather than hashed.
 */
#define _GNU_SOURCE
#include "command-digest.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"

static size_t name_len(const char *entry) { return (size_t)(strchrnul(entry, '=') - entry); }

int command_env_cmp(const char *a, const char *b) {
  size_t la = name_len(a), lb = name_len(b);
  int c = memcmp(a, b, la < lb ? la : lb);
  return c != 0 ? c : (la > lb) - (la < lb);
}

static int env_qsort_cmp(const void *a, const void *b) { return command_env_cmp(*(const char *const *)a, *(const char *const *)b); }

void command_env_sort(const char **envp, size_t n) { qsort(envp, n, sizeof *envp, env_qsort_cmp); }

static void put_len(sha256_t *c, size_t n) {
  unsigned char be[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
  sha256_update(c, be, sizeof be);
}

static void put_field(sha256_t *c, const char *s, size_t n) {
  put_len(c, n);
  sha256_update(c, s, n);
}

int command_digest(const char *exe, const char *const *argv, int argc, const char *const *envp, int envc, char hex[COMMAND_DIGEST_HEX + 1],
                   char *why) {
  static const char TAG[] = "podsock-command 1";
  char q[64];
  const char **sorted = malloc(((size_t)envc + 1) * sizeof *sorted);
  if (sorted == NULL) return -ENOMEM;
  memcpy(sorted, envp, (size_t)envc * sizeof *sorted);
  command_env_sort(sorted, (size_t)envc);
  for (int i = 0; i < envc; i++) {
    size_t n = name_len(sorted[i]);
    const char *bad = sorted[i][n] != '=' ? "the podman environment has an entry without '=': '%s'"
                      : n == 0                 ? "the podman environment has a variable with an empty name"
                      : i > 0 && command_env_cmp(sorted[i - 1], sorted[i]) == 0 ? "the podman environment sets the variable '%s' twice"
                                                                                 : NULL;
    if (bad == NULL) continue;
    plan_quote(q, sizeof q, sorted[i], n);
    snprintf(why, PLAN_WHY_MAX, bad, q);
    free(sorted);
    return -EINVAL;
  }
  sha256_t c;
  sha256_init(&c);
  sha256_update(&c, TAG, sizeof TAG); /* with its NUL */
  put_len(&c, (size_t)argc);
  put_field(&c, exe, strlen(exe));
  for (int i = 0; i < argc; i++) put_field(&c, argv[i], strlen(argv[i]));
  put_len(&c, (size_t)envc);
  for (int i = 0; i < envc; i++) {
    size_t n = name_len(sorted[i]);
    put_field(&c, sorted[i], n);
    put_field(&c, sorted[i] + n + 1, strlen(sorted[i] + n + 1));
  }
  free(sorted);
  unsigned char d[SHA256_BYTES];
  sha256_final(&c, d);
  for (int i = 0; i < SHA256_BYTES; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
  return 0;
}
