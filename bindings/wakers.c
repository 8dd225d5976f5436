/* The process-wide registry of wakers: ids that name a loop's waker eventfd
 * without naming the descriptor itself.
 *
 * A channel's port (src/channel.ts) travels to other threads as plain data. If
 * it carried the eventfd's number, a poster could write to that number after
 * the loop closed it and the number was handed out again (to a socket, a file,
 * another loop's eventfd). The port carries an id instead:
 *
 *   wakerRegister(fd) -> id   the loop's thread, for its waker eventfd
 *   wakeId(id)        -> 0    any thread: one write(2) to the fd behind id
 *   wakerUnregister(id)       the loop's close, before it closes the eventfd
 *
 * Invariants:
 *   - Ids come from one 64-bit counter that only grows: an id is never given
 *     out twice, so a retired id stays retired. Ids are handed to JavaScript
 *     as numbers, exact up to 2**53 - 1; the counter stops there (-EOVERFLOW),
 *     which at a million registrations a second takes 285 years.
 *   - One mutex guards the table, and wakeId writes while holding it. Once
 *     wakerUnregister has returned, no write to that fd is in progress or can
 *     start through its id, so the caller may close the fd.
 *   - An entry belongs to the environment that registered it. Only that
 *     environment unregisters it (-EPERM for another), and its teardown
 *     retires what it left registered before its owned descriptors are
 *     closed (addon.c), so an id never outlives its fd, even when a worker is
 *     terminated without closing its loop.
 *   - The same fd may be registered more than once; each id is retired on its
 *     own, and the fd must stay open until all of them are.
 *   - Misuse throws a TypeError naming the argument; nothing aborts. wakeId
 *     counts its write(2) calls in the calling environment's counters().wakes,
 *     as wake() does.
 *
 * The table holds a few entries (one per loop that has channels), so lookup
 * is a linear scan; the lock is held for that scan and one nonblocking write.
 */
#define _GNU_SOURCE
#include "addon.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

/* The largest id: the largest integer a double holds exactly. */
#define WAKER_ID_MAX ((uint64_t)9007199254740991ULL)

typedef struct {
  uint64_t id;
  int fd;
  ioloop_state *owner;
} waker_entry;

static pthread_mutex_t wakers_lock = PTHREAD_MUTEX_INITIALIZER;
static waker_entry *wakers;
static size_t wakers_len, wakers_cap;
static uint64_t next_id = 1;

/* The index of `id`, or -1. Lock held. */
static ptrdiff_t find_locked(uint64_t id) {
  for (size_t i = 0; i < wakers_len; i++)
    if (wakers[i].id == id) return (ptrdiff_t)i;
  return -1;
}

/* Why `id` is not in the table: it was given out and retired (-EBADF: its fd
 * is closed or about to be), or it never was (-ESRCH). Lock held. */
static int missing_locked(uint64_t id) { return id < next_id ? -EBADF : -ESRCH; }

/* An id argument: an integer in [1, 2**53 - 1]. */
static bool arg_id(napi_env env, napi_value v, const char *fn, uint64_t *out) {
  int64_t x = 0;
  if (!ioloop_arg_int(env, v, fn, "id", "an integer in [1, 2**53 - 1]", 1,
                      (double)WAKER_ID_MAX, &x))
    return false;
  *out = (uint64_t)x;
  return true;
}

/* wakerRegister(fd): a new id for fd, or -errno: -EBADF if fd is not open,
 * -ENOMEM, -EOVERFLOW once the ids are used up. */
static napi_value waker_register_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data = NULL;
  if (!ioloop_args(env, info, 1, argv, &data)) return NULL;
  int fd;
  if (!ioloop_arg_fd(env, argv[0], "wakerRegister", "fd", &fd)) return NULL;
  pthread_mutex_lock(&wakers_lock);
  int err = 0;
  uint64_t id = 0;
  /* A closed number cannot be a waker; one that is open is taken on trust
   * (the loop registers its own eventfd). */
  if (fcntl(fd, F_GETFD) < 0) {
    err = -errno;
  } else if (next_id > WAKER_ID_MAX) {
    err = -EOVERFLOW;
  } else {
    if (wakers_len == wakers_cap) {
      size_t cap = wakers_cap ? wakers_cap * 2 : 8;
      waker_entry *grown = realloc(wakers, cap * sizeof *grown);
      if (grown == NULL) {
        err = -ENOMEM;
      } else {
        wakers = grown;
        wakers_cap = cap;
      }
    }
    if (err == 0) {
      id = next_id++;
      wakers[wakers_len].id = id;
      wakers[wakers_len].fd = fd;
      wakers[wakers_len].owner = data;
      wakers_len++;
    }
  }
  pthread_mutex_unlock(&wakers_lock);
  return err < 0 ? ioloop_int(env, err) : ioloop_double(env, (double)id);
}

/* wakeId(id): add 1 to the eventfd behind id. 0, -EBADF (id retired), -ESRCH
 * (id never given out), or the write's -errno; a full counter (EAGAIN) is
 * already a pending wake and counts as success. */
static napi_value wake_id_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data = NULL;
  if (!ioloop_args(env, info, 1, argv, &data)) return NULL;
  ioloop_state *st = data;
  uint64_t id;
  if (!arg_id(env, argv[0], "wakeId", &id)) return NULL;
  int result = 0;
  pthread_mutex_lock(&wakers_lock);
  ptrdiff_t i = find_locked(id);
  if (i < 0) {
    result = missing_locked(id);
  } else {
    uint64_t one = 1;
    ssize_t r;
    do {
      st->n_wakes++;
      r = write(wakers[i].fd, &one, sizeof one);
    } while (r < 0 && errno == EINTR);
    if (r < 0 && errno != EAGAIN) result = -errno;
  }
  pthread_mutex_unlock(&wakers_lock);
  return ioloop_int(env, result);
}

/* wakerUnregister(id): retire id. 0, -EBADF (already retired), -ESRCH (never
 * given out), -EPERM (registered by another environment). */
static napi_value waker_unregister_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data = NULL;
  if (!ioloop_args(env, info, 1, argv, &data)) return NULL;
  uint64_t id;
  if (!arg_id(env, argv[0], "wakerUnregister", &id)) return NULL;
  int result = 0;
  pthread_mutex_lock(&wakers_lock);
  ptrdiff_t i = find_locked(id);
  if (i < 0)
    result = missing_locked(id);
  else if (wakers[i].owner != data)
    result = -EPERM;
  else
    wakers[i] = wakers[--wakers_len];
  pthread_mutex_unlock(&wakers_lock);
  return ioloop_int(env, result);
}

void ioloop_wakers_retire_all(ioloop_state *st) {
  pthread_mutex_lock(&wakers_lock);
  size_t i = 0;
  while (i < wakers_len) {
    if (wakers[i].owner == st)
      wakers[i] = wakers[--wakers_len];
    else
      i++;
  }
  pthread_mutex_unlock(&wakers_lock);
}

const ioloop_export ioloop_wakers_exports[] = {
    {"wakerRegister", waker_register_js},
    {"wakeId", wake_id_js},
    {"wakerUnregister", waker_unregister_js},
    {NULL, NULL},
};
