/* Process spawning for podsock's addon (spawn.c): registered on the addon's exports by its init. */
#ifndef PODSOCK_SPAWN_H
#define PODSOCK_SPAWN_H
#include <node_api.h>

/* Adds spawnSupported, spawnProcess and killProcess to `exports`. */
napi_status podsock_spawn_register(napi_env env, napi_value exports);

#endif
