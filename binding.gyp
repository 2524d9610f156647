{
  # One small Node-API addon, one C file per concern (the core podsock_native.c calls each file's
  # register function): raw fds (fd.c) and listening sockets (listen.c), unix datagram sockets
  # (dgram.c: NOTIFY_SOCKET, SO_PASSCRED), the handle life cycle they share (handle.c), the relay
  # (relay.c, its connect step relay-connect.c, its poll engine relay-poll.c, its io_uring engine
  # relay-uring.c on uring.c), the acceptor (acceptor.c), a vfork-style process spawn (spawn.c), closing
  # passed fds off the event loop (closer.c), sock_diag counting (sock-diag.c) and sockets made inside a
  # container's network namespace (netns.c), advisory record locks on lock files (record-lock.c), the
  # UDP proxy (udp-proxy.c, its data path udp-proxy-io.c, timer udp-proxy-timer.c and ancillary data
  # udp-proxy-pktinfo.c, on its flow table udp-flows.c and PROXY v2 encoder proxy-v2.c), which core
  # Node does not offer; and podsock-launch (native/launch.c, its plan parser plan.c and command digest
  # command-digest.c, sha256.c), which starts podman before Node boots. Built by `node-gyp rebuild`
  # (package.json "install").
  "targets": [
    {
      "target_name": "podsock_native",
      "sources": [
        "native/podsock_native.c", "native/fd.c", "native/listen.c", "native/dgram.c", "native/handle.c",
        "native/relay.c", "native/relay-connect.c", "native/relay-poll.c", "native/relay-uring.c", "native/uring.c",
        "native/acceptor.c", "native/spawn.c", "native/memory.c", "native/closer.c", "native/sock-diag.c", "native/netns.c", "native/record-lock.c",
        "native/udp-proxy.c", "native/udp-proxy-io.c", "native/udp-proxy-timer.c", "native/udp-proxy-pktinfo.c", "native/udp-flows.c", "native/proxy-v2.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Werror=implicit-function-declaration", "-fvisibility=hidden"]
    },
    {
      "target_name": "podsock-launch",
      "type": "executable",
      "sources": ["native/launch.c", "native/plan.c", "native/command-digest.c", "native/sha256.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-O2"]
    }
  ]
}
