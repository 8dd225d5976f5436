/* Per-environment state of the native shim and the entry points each file
 * registers.
 *
 * Invariants:
 *   - One ioloop_state per environment (the main thread and each worker), set
 *     with napi_set_instance_data and passed to every export as its data
 *     pointer. Only that environment's thread touches it, so it needs no lock.
 *   - Descriptors the shim creates for the loop (epoll fds, eventfds, the
 *     eventfds of poll sets) are recorded in one process-wide table (owned.c,
 *     behind a mutex) with the environment that created them; the
 *     environment's cleanup closes those that are still open. Descriptors made
 *     by the sys calls belong to the caller and are never closed behind its
 *     back.
 *   - Teardown has two hooks. A plain cleanup hook, added when the module
 *     loads, closes watchers (joining their threads), then poll sets, then the
 *     owned descriptors. An async cleanup hook is added only by the first
 *     guestOpen that finds libuv, because only libuv handles close in a callback:
 *     it closes the guests and finishes when `closing_handles` is back to 0, so
 *     no close callback ever runs after the state is freed. Hosts without
 *     libuv never get the async hook. Each watcher also adds a hook of its
 *     own, so that its thread is joined before the host tears down its
 *     thread-safe function (watcher.c).
 *   - Guest drivers (guest.c), poll sets (pollset.c) and watchers (watcher.c)
 *     are linked into their environment's lists while open.
 *   - Waker ids (wakers.c) live in one process-wide table behind a mutex, each
 *     entry owned by the environment that registered it; the plain cleanup
 *     hook retires an environment's entries before its owned descriptors are
 *     closed, so no id outlives the eventfd it names.
 *   - Nothing links against libuv: guest.c finds the libuv functions it needs
 *     with dlsym when first used (uv.h is included only for types and
 *     constants).
 */
#ifndef WASM_IOLOOP_ADDON_H
#define WASM_IOLOOP_ADDON_H

#if !defined(__linux__)
#error "wasm-ioloop's native shim needs Linux (epoll, eventfd, accept4, pipe2). \
On other systems the package runs without it (portable driver); set \
WASM_IOLOOP_NO_NATIVE=1 to skip this build."
#endif

#include <node_api.h>

#include "layout.h"

#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* Why a guest driver or a watcher calls onTurn (besides -errno for a failed
 * wait): IOLOOP_TURN_IO and IOLOOP_TURN_TIMER, from layout.h. */

typedef struct ioloop_guest ioloop_guest;
typedef struct ioloop_pollset ioloop_pollset;
typedef struct ioloop_watcher ioloop_watcher;

typedef struct ioloop_state {
  napi_env env;
  /* Syscall counts, read by counters(). */
  uint64_t n_epoll_wait;
  uint64_t n_epoll_ctl;
  uint64_t n_wakes;
  /* Open guest drivers, poll sets and watchers of this environment. */
  ioloop_guest *guests;
  ioloop_pollset *pollsets;
  ioloop_watcher *watchers;
  /* libuv handles closing but not yet closed (guest.c). */
  unsigned closing_handles;
  /* The async cleanup hook (once a guest was opened), and whether it waits for
   * closing_handles to drain. */
  napi_async_cleanup_hook_handle cleanup_hook;
  bool cleanup_added;
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
extern const ioloop_export ioloop_pollset_exports[];
extern const ioloop_export ioloop_watcher_exports[];
extern const ioloop_export ioloop_signal_exports[];
extern const ioloop_export ioloop_wakers_exports[];

/* addon.c */

/* Add the async cleanup hook that waits for libuv close callbacks, once per
 * environment. False (with an Error thrown) if the host refuses it. */
bool ioloop_need_async_cleanup(napi_env env, ioloop_state *st);

/* poller.c: what epollWait and pollWait share. */

/* The most records one wait writes, the core's ready buffer (layout.h); the rest
 * stay ready for the next call. */
#define IOLOOP_WAIT_MAX IOLOOP_READY_CAPACITY

/* The checked (buffer, byteOffset, maxEvents, timeoutMs) arguments of a wait. */
typedef struct ioloop_wait_args {
  uint8_t *out;   /* where the first record goes */
  int max;        /* records to write at most, <= IOLOOP_WAIT_MAX */
  int timeout_ms; /* whole milliseconds rounded up, -1 for no timeout */
} ioloop_wait_args;

/* Read argv[0..3] as above; false with a TypeError thrown on misuse. */
bool ioloop_arg_wait(napi_env env, napi_value argv[4], const char *fn,
                     ioloop_wait_args *out);
/* The checked (op, fd, events, token) arguments of a ctl call; events and
 * token are 0 for CTL_DEL. False with a TypeError thrown on misuse. */
bool ioloop_arg_ctl(napi_env env, napi_value argv[4], const char *fn, int *op, int *fd,
                    uint32_t *events, uint32_t *token);
/* A wait asked for `wanted` ms (> 0) at `start` and was interrupted: the whole
 * milliseconds left, <= 0 once the deadline has passed. Rounding elapsed time
 * down keeps the wait from ending early. */
int ioloop_ms_left(int wanted, const struct timespec *start);
/* Write one (token, events) record, little-endian. */
void ioloop_put_record(uint8_t *at, uint32_t token, uint32_t events);

/* pollset.c */

/* Something that waits on a copy of a poll set on another thread (a watcher)
 * and wants to hear when the set changes. `polling` is true while the waiter
 * may be inside poll(2) on a copy; the set then writes to `efd`. */
typedef struct ioloop_set_listener {
  _Atomic bool polling;
  int efd;
  struct ioloop_set_listener *next;
} ioloop_set_listener;

/* The poll set of `st` whose fd is `fd`, or NULL. */
ioloop_pollset *ioloop_pollset_find(ioloop_state *st, int fd);
/* The errno for a set argument that is not one: EBADF if `fd` is closed, else
 * EINVAL (as epoll_ctl says of an epfd that is not an epoll fd). */
int ioloop_pollset_not_a_set(int fd);
void ioloop_pollset_listen(ioloop_pollset *set, ioloop_set_listener *l);
void ioloop_pollset_unlisten(ioloop_pollset *set, ioloop_set_listener *l);
/* Copy the set's eventfd and registrations (fd and events only) into
 * (*buf)[at...], growing *buf, unless *gen says the copy there is current.
 * Returns the number of pollfds from `at`, or -ENOMEM. Takes the set's lock;
 * the only entry point meant for another thread. */
int ioloop_pollset_snapshot(ioloop_pollset *set, struct pollfd **buf, size_t *cap,
                            size_t at, uint64_t *gen);
/* close(): if `fd` is a set of `st`, free it and close its eventfd, storing
 * close's result in *result, and return true. Watchers must have been
 * detached first (ioloop_watcher_forget_fd). */
bool ioloop_pollset_close(ioloop_state *st, int fd, int *result);
/* close(): `fd` is being closed, so no set of `st` watches it any more. */
void ioloop_pollset_forget_fd(ioloop_state *st, int fd);
void ioloop_pollset_close_all(ioloop_state *st);

/* watcher.c */

/* close(): watchers of `st` waiting on `fd` (an epoll fd or a set) stop, wait
 * until their thread has left poll(2), and let go of a set. */
void ioloop_watcher_forget_fd(ioloop_state *st, int fd);
void ioloop_watcher_close_all(ioloop_state *st);

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

/* wakers.c */

/* Retire every waker id `st` registered (its teardown, before the owned
 * descriptors are closed). */
void ioloop_wakers_retire_all(ioloop_state *st);

/* signals.c */

/* Stop every signal watch of `st`, restoring dispositions no loop needs any
 * more, and close the slots' descriptors. */
void ioloop_signal_close_all(ioloop_state *st);

/* guest.c */

/* Close every open guest driver of `st` (their close callbacks run later). */
void ioloop_guest_close_all(ioloop_state *st);
/* Called when a libuv close callback finishes: lets the cleanup hook end. */
void ioloop_handle_closed(ioloop_state *st);
/* Called by close(): a guest of `st` watching `fd` stops watching it, since
 * libuv aborts if it is asked to watch a closed descriptor. */
void ioloop_guest_forget_fd(ioloop_state *st, int fd);

#endif
