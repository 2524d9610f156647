/*
 * Fuzz driver for podsock-launch's plan parser (native/plan.c) and command digest
 * (native/command-digest.c), built with -fsanitize=address,undefined by launch-plan.test.ts.
 *
 * stdin: plans, each as a 32-bit little-endian byte count and that many bytes. For each plan, one line
 * on stdout (line-buffered, so that after a sanitizer report the line count names the plan):
 *   ok HEX     parsed; HEX is the digest of its command with each notify directory made as mkdtemp(3)
 *              would, its XXXXXX replaced by "fuzz0" and the record's index
 *   bad WHY    refused, and why
 * Each plan sits in a buffer of exactly its size, so that reading one byte past it is a report.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command-digest.h"
#include "plan.h"

static plan_t plan;

static int carry_out(plan_t *p, char hex[COMMAND_DIGEST_HEX + 1], char why[PLAN_WHY_MAX]) {
  static char *argv[PLAN_ARGS_MAX], *envp[PLAN_ENV_MAX];
  int na = 0, ne = 0, r = -ENOMEM;
  for (int i = 0; i < p->nnotify; i++) {
    char *x = p->notify[i].dir + strlen(p->notify[i].dir) - 6;
    memcpy(x, "fuzz0", 5);
    x[5] = (char)('0' + i);
  }
  char *exe = plan_substitute(p->exe, p->notify, p->nnotify);
  for (int i = 0; i < p->nargs; i++)
    if ((argv[na++] = plan_substitute(p->args[i], p->notify, p->nnotify)) == NULL) goto out;
  for (int i = 0; i < p->nenv; i++)
    if ((envp[ne++] = plan_substitute(p->env[i], p->notify, p->nnotify)) == NULL) goto out;
  if (exe != NULL) r = command_digest(exe, (const char *const *)argv, na, (const char *const *)envp, ne, hex, why);
out:
  free(exe);
  for (int i = 0; i < na; i++) free(argv[i]);
  for (int i = 0; i < ne; i++) free(envp[i]);
  return r;
}

int main(void) {
  unsigned char len[4];
  char why[PLAN_WHY_MAX], hex[COMMAND_DIGEST_HEX + 1];
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fread(len, 1, sizeof len, stdin) == sizeof len) {
    size_t size = (size_t)len[0] | (size_t)len[1] << 8 | (size_t)len[2] << 16 | (size_t)len[3] << 24;
    char *buf = malloc(size);
    if (buf == NULL && size > 0) return 2;
    if (fread(buf, 1, size, stdin) != size) {
      fprintf(stderr, "launch-plan-driver: input truncated\n");
      free(buf);
      return 2;
    }
    int r = plan_parse(buf, size, &plan, why);
    if (r == 0) r = carry_out(&plan, hex, why);
    if (r == 0) printf("ok %s\n", hex);
    else if (r == -EINVAL) printf("bad %s\n", why);
    else printf("error %d\n", r);
    free(buf);
  }
  return 0;
}
