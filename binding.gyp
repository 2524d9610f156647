{
  # One small Node-API addon: unix datagram sockets (NOTIFY_SOCKET, SO_PASSCRED), raw fd operations,
  # the relay (io_uring: uring.c), a vfork-style process spawn (spawn.c), closing passed fds off the
  # event loop (closer.c), sock_diag counting (sock-diag.c) and sockets made inside a container's
  # network namespace (netns.c), which core Node does not offer; and podsock-launch
  # (native/launch.c, its plan parser plan.c and command digest command-digest.c, sha256.c), which
  # starts podman before Node boots. Built by `node-gyp rebuild` (package.json "install").
  "targets": [
    {
      "target_name": "podsock_native",
      "sources": ["native/podsock_native.c", "native/spawn.c", "native/uring.c", "native/memory.c", "native/closer.c", "native/sock-diag.c", "native/netns.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    },
    {
      "target_name": "podsock-launch",
      "type": "executable",
      "sources": ["native/launch.c", "native/plan.c", "native/command-digest.c", "native/sha256.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"]
    }
  ]
}
