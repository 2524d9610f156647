/* Giving memory back to the kernel once podsock is serving (memory.c): registered on the addon's exports by its init. */
#ifndef PODSOCK_MEMORY_H
#define PODSOCK_MEMORY_H
#include <node_api.h>

/* Adds mallocTrim and dropFilePages to `exports`. */
napi_status podsock_memory_register(napi_env env, napi_value exports);

#endif
