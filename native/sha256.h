/* SHA-256 (FIPS 180-4) for podsock-launch's command digest (command-digest.c): the same hash podsock
 * computes with node:crypto. Incremental: init, update any number of times, final. */
#ifndef PODSOCK_SHA256_H
#define PODSOCK_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_BYTES 32

typedef struct {
  uint32_t state[8];
  uint64_t length; /* bytes hashed so far */
  unsigned char block[64];
  size_t used; /* bytes waiting in `block` */
} sha256_t;

void sha256_init(sha256_t *c);
void sha256_update(sha256_t *c, const void *data, size_t n);
void sha256_final(sha256_t *c, unsigned char out[SHA256_BYTES]);

#endif
