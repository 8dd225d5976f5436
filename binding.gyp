{
  "targets": [
    {
      "target_name": "wasm_ioloop",
      "sources": [
        "bindings/addon.c",
        "bindings/guest.c",
        "bindings/owned.c",
        "bindings/poller.c",
        "bindings/pollset.c",
        "bindings/signals.c",
        "bindings/sys.c",
        "bindings/wakers.c",
        "bindings/watcher.c"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags!": ["-O3", "-Wno-unused-parameter"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "cflags_c": ["-std=c11"],
      "libraries": ["-lpthread", "-ldl"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-O2", "-Wall", "-Wextra", "-std=c11"]
      }
    },
    {
      "target_name": "wasm_ioloop_watchdog",
      "sources": ["bindings/watchdog.cc"],
      "cflags!": ["-O3"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-cast-function-type"],
      "cflags_cc": ["-std=gnu++17"],
      "libraries": ["-lpthread"],
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": ["-O2", "-Wall", "-Wextra", "-std=gnu++17"]
      }
    }
  ]
}
