/* Per-environment state of the native shim and the entry points each file
 * registers.
 *
 * Invariants:
 *   - One ioloop_state per Node environment (the main thread and each worker),
 *     set with napi_set_instance_data and passed to every export as its data
 *     pointer. Only that environment's thread touches it, so it needs no lock.
 *   - Descriptors the shim creates for the loop (epoll fds, eventfds) are
 *     recorded in one process-wide table (owned.c, behind a mutex) with the
 *     environment that created them; the environment's cleanup closes those
 *     that are still open. Descriptors made by the sys calls belong to the
 *     caller and are never closed behind its back.
 *   - Guest drivers (guest.c) are linked into their environment's list while
 *     open; `closing_handles` counts libuv handles whose close callback has not
 *     run yet. The environment's async cleanup hook finishes only when it is 0,
 *     so no close callback ever runs after the state is freed.
 */
#ifndef WASM_IOLOOP_ADDON_H
#define WASM_IOLOOP_ADDON_H

#if !defined(__linux__)
#error "wasm-ioloop's native shim needs Linux (epoll, eventfd, accept4, pipe2). \
On other systems the package runs without it (portable driver); set \
WASM_IOLOOP_NO_NATIVE=1 to skip this build."
#endif

#include <node_api.h>
#include <uv.h>

#include <stdbool.h>
#include <stdint.h>

typedef struct ioloop_guest ioloop_guest;

typedef struct ioloop_state {
  napi_env env;
  /* Syscall counts, read by counters(). */
  uint64_t n_epoll_wait;
  uint64_t n_epoll_ctl;
  uint64_t n_wakes;
  /* Open guest drivers of this environment. */
  ioloop_guest *guests;
  /* libuv handles closing but not yet closed (guest.c). */
  unsigned closing_handles;
  /* The async cleanup hook, and whether it waits for closing_handles to drain. */
  napi_async_cleanup_hook_handle cleanup_hook;
  bool cleanup_waiting;
} ioloop_state;

/* One exported function: name and callback. Each file lists its own. */
typedef struct ioloop_export {
  const char *name;
  napi_callback cb;
} ioloop_export;

extern const ioloop_export ioloop_poller_exports[];
extern const ioloop_export ioloop_guest_exports[];
extern const ioloop_export ioloop_sys_exports[];

/* owned.c: the process-wide table of descriptors owned by environments. */

/* Run `create` (a syscall returning an fd or -1 with errno) and record the
 * result as owned by `st`, atomically with respect to ioloop_close_fd, so a
 * number closed on one thread and reused on another is never mistaken. Returns
 * the fd or -errno. */
int ioloop_create_owned(ioloop_state *st, int (*create)(void));
/* close(2) `fd` and forget whoever owned it. Returns 0 or -errno. */
int ioloop_close_fd(int fd);
/* Close every descriptor `st` still owns. */
void ioloop_close_owned(ioloop_state *st);

/* guest.c */

/* Close every open guest driver of `st` (their close callbacks run later). */
void ioloop_guest_close_all(ioloop_state *st);
/* Called when a libuv close callback finishes: lets the cleanup hook end. */
void ioloop_handle_closed(ioloop_state *st);
/* Called by close(): a guest of `st` watching `fd` stops watching it, since
 * libuv aborts if it is asked to watch a closed descriptor. */
void ioloop_guest_forget_fd(ioloop_state *st, int fd);

#endif
