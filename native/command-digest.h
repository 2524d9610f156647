/*
 * The digest of a podman command (command-digest.c) by which podsock recognises the podman that
 * podsock-launch started as the one it would start itself (src/runtime/prestart.ts commandDigest
 * computes the same): SHA-256 over a canonical encoding, hex.
 */
#ifndef PODSOCK_COMMAND_DIGEST_H
#define PODSOCK_COMMAND_DIGEST_H

#include <stddef.h>

#include "sha256.h"

#define COMMAND_DIGEST_HEX (2 * SHA256_BYTES)

/* strcmp(3) of the names of two NAME=VALUE entries (the bytes before the first '='). */
int command_env_cmp(const char *a, const char *b);

/* Sort `n` NAME=VALUE entries by name (command_env_cmp), in place. */
void command_env_sort(const char **envp, size_t n);

/*
 * The digest of running `exe` with `argv` (argc words, argv[0] included) and the environment `envp`
 * (envc NAME=VALUE entries in any order; LISTEN_PID is the caller's to leave out): 0 with `hex` set,
 * -EINVAL with `why` (PLAN_WHY_MAX bytes) when an entry has no '=' or an empty name or a name occurs
 * twice, -ENOMEM. The encoding, every length a 32-bit big-endian byte count:
 *
 *   "podsock-command 1\0", argc, len exe, exe, (len arg, arg) for each of argv,
 *   envc, (len NAME, NAME, len VALUE, VALUE) for each variable in the byte order of NAME
 */
int command_digest(const char *exe, const char *const *argv, int argc, const char *const *envp, int envc, char hex[COMMAND_DIGEST_HEX + 1],
                   char *why);

#endif
