{
  # One small Node-API addon: unix datagram sockets (NOTIFY_SOCKET, SO_PASSCRED) and raw fd
  # operations that core Node does not offer. Built by `node-gyp rebuild` (package.json "install").
  "targets": [
    {
      "target_name": "podsock_native",
      "sources": ["native/podsock_native.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
