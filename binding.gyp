{
  # One small Node-API addon: unix datagram sockets (NOTIFY_SOCKET, SO_PASSCRED), raw fd operations
  # and a vfork-style process spawn (native/spawn.c) that core Node does not offer; and podsock-launch
  # (native/launch.c), which starts podman before Node boots. Built by `node-gyp rebuild` (package.json "install").
  "targets": [
    {
      "target_name": "podsock_native",
      "sources": ["native/podsock_native.c", "native/spawn.c", "native/uring.c", "native/memory.c", "native/netns.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    },
    {
      "target_name": "podsock-launch",
      "type": "executable",
      "sources": ["native/launch.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"]
    }
  ]
}
