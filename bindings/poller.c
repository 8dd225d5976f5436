/* The epoll poller and the eventfd waker: the hot path of every loop turn.
 *
 * Contract (what src/ relies on):
 *   - Numbers in, -errno out: a failing syscall never throws. Arguments are
 *     still checked, and misuse throws a TypeError naming the argument.
 *   - Registrations are level-triggered: a ready descriptor is reported on
 *     every epollWait until it is drained. The interest bits are the core's
 *     EV_* values, which are the kernel's EPOLL* values (checked below at
 *     compile time), so nothing is translated.
 *   - The token given to epollCtl comes back verbatim in each ready record.
 *   - epollWait writes records into a WebAssembly memory's ArrayBuffer passed
 *     afresh on every call (memory.grow detaches the old one), so the pointer
 *     is re-derived and bounds-checked each time.
 *   - wake() is one write(2) and is safe from any thread, on any environment's
 *     eventfd; it counts in the calling environment's counters.
 *
 * Limits: at most IOLOOP_WAIT_MAX records per epollWait (the rest stay ready
 * for the next call); timeouts are whole milliseconds, rounded up so a wait
 * never ends before the deadline it was asked for.
 *
 * The argument checks of epollCtl and epollWait are shared with pollCtl and
 * pollWait (pollset.c), so both pollers accept and refuse exactly the same
 * values with the same messages.
 */
#define _GNU_SOURCE
#include "addon.h"
#include "layout.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

_Static_assert(IOLOOP_EV_READ == EPOLLIN, "EV_READ must equal EPOLLIN");
_Static_assert(IOLOOP_EV_WRITE == EPOLLOUT, "EV_WRITE must equal EPOLLOUT");
_Static_assert(IOLOOP_EV_ERROR == (EPOLLERR | EPOLLHUP),
               "EV_ERROR must equal EPOLLERR | EPOLLHUP");
_Static_assert(IOLOOP_CTL_ADD == EPOLL_CTL_ADD, "CTL_ADD must equal EPOLL_CTL_ADD");
_Static_assert(IOLOOP_CTL_DEL == EPOLL_CTL_DEL, "CTL_DEL must equal EPOLL_CTL_DEL");
_Static_assert(IOLOOP_CTL_MOD == EPOLL_CTL_MOD, "CTL_MOD must equal EPOLL_CTL_MOD");
_Static_assert(IOLOOP_EVENT_SIZE == 8 && IOLOOP_EVENT_TOKEN_OFFSET == 0 &&
                   IOLOOP_EVENT_EVENTS_OFFSET == 4,
               "the ready record is (u32 token, u32 events)");

/* IOLOOP_WAIT_MAX epoll_events (12 bytes each) fit the stack comfortably; a
 * loop with more ready descriptors gets the rest on its next turn. */

#define EV_ALL (IOLOOP_EV_READ | IOLOOP_EV_WRITE | IOLOOP_EV_ERROR)

static void put_u32le(uint8_t *p, uint32_t x) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(p, &x, 4);
#else
  p[0] = (uint8_t)x;
  p[1] = (uint8_t)(x >> 8);
  p[2] = (uint8_t)(x >> 16);
  p[3] = (uint8_t)(x >> 24);
#endif
}

void ioloop_put_record(uint8_t *at, uint32_t token, uint32_t events) {
  put_u32le(at + IOLOOP_EVENT_TOKEN_OFFSET, token);
  put_u32le(at + IOLOOP_EVENT_EVENTS_OFFSET, events);
}

static int make_epoll(void) { return epoll_create1(EPOLL_CLOEXEC); }
static int make_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

static napi_value epoll_create_js(napi_env env, napi_callback_info info) {
  void *data = NULL;
  if (!ioloop_args(env, info, 0, NULL, &data)) return NULL;
  return ioloop_int(env, ioloop_create_owned(data, make_epoll));
}

static napi_value eventfd_open_js(napi_env env, napi_callback_info info) {
  void *data = NULL;
  if (!ioloop_args(env, info, 0, NULL, &data)) return NULL;
  return ioloop_int(env, ioloop_create_owned(data, make_eventfd));
}

bool ioloop_arg_ctl(napi_env env, napi_value argv[4], const char *fn, int *op_out,
                    int *fd_out, uint32_t *events_out, uint32_t *token_out) {
  int64_t op, events = 0, token = 0;
  if (!ioloop_arg_int(env, argv[0], fn, "op", "CTL_ADD (1), CTL_DEL (2) or CTL_MOD (3)",
                      1, 3, &op))
    return false;
  if (!ioloop_arg_fd(env, argv[1], fn, "fd", fd_out)) return false;
  if (op != IOLOOP_CTL_DEL) {
    static const char rule[] = "an integer made of EV_READ, EV_WRITE and EV_ERROR bits";
    if (!ioloop_arg_int(env, argv[2], fn, "events", rule, 0, EV_ALL, &events))
      return false;
    if ((events & ~(int64_t)EV_ALL) != 0) {
      ioloop_throw_arg(env, argv[2], fn, "events", rule);
      return false;
    }
    if (!ioloop_arg_int(env, argv[3], fn, "token", "an integer in [0, 2**32 - 1]", 0,
                        4294967295.0, &token))
      return false;
  }
  *op_out = (int)op;
  *events_out = (uint32_t)events;
  *token_out = (uint32_t)token;
  return true;
}

/* epollCtl(epfd, op, fd, events, token): 0 or -errno. For CTL_DEL, events and
 * token are ignored and may be omitted. */
static napi_value epoll_ctl_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "epollCtl";
  napi_value argv[5];
  void *data = NULL;
  if (!ioloop_args(env, info, 5, argv, &data)) return NULL;
  ioloop_state *st = data;
  int epfd, op, fd;
  uint32_t events, token;
  if (!ioloop_arg_fd(env, argv[0], fn, "epfd", &epfd)) return NULL;
  if (!ioloop_arg_ctl(env, argv + 1, fn, &op, &fd, &events, &token)) return NULL;
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events; /* no EPOLLET: level-triggered */
  ev.data.u64 = token;
  int r;
  do {
    st->n_epoll_ctl++;
    r = epoll_ctl(epfd, op, fd, &ev);
  } while (r < 0 && errno == EINTR);
  return ioloop_int(env, r < 0 ? -errno : 0);
}

int ioloop_ms_left(int wanted, const struct timespec *start) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  int64_t elapsed = (int64_t)(now.tv_sec - start->tv_sec) * 1000 +
                    (now.tv_nsec - start->tv_nsec) / 1000000;
  int64_t left = wanted - elapsed;
  return left <= 0 ? 0 : (int)left;
}

bool ioloop_arg_wait(napi_env env, napi_value argv[4], const char *fn,
                     ioloop_wait_args *out) {
  int64_t offset, max_events;
  double timeout_d;
  void *base = NULL;
  size_t length = 0;
  if (napi_get_arraybuffer_info(env, argv[0], &base, &length) != napi_ok) {
    ioloop_throw_arg(env, argv[0], fn, "buffer", "an ArrayBuffer");
    return false;
  }
  if (!ioloop_arg_int(env, argv[1], fn, "byteOffset", "an integer >= 0", 0,
                      9007199254740991.0, &offset))
    return false;
  if (!ioloop_arg_int(env, argv[2], fn, "maxEvents", "an integer >= 1", 1,
                      2147483647.0, &max_events))
    return false;
  if (!ioloop_arg_number(env, argv[3], fn, "timeoutMs", "a number (< 0 waits forever)",
                         &timeout_d))
    return false;
  /* The whole region the caller named must lie inside the buffer, even though
   * at most IOLOOP_WAIT_MAX records are written. */
  if ((uint64_t)offset > length ||
      (uint64_t)max_events > (length - (uint64_t)offset) / IOLOOP_EVENT_SIZE) {
    bool detached = false;
    napi_is_detached_arraybuffer(env, argv[0], &detached);
    if (detached)
      ioloop_throw(env, true, "ERR_INVALID_ARG_VALUE",
                   "%s: buffer must not be detached (pass memory.buffer afresh after "
                   "memory.grow)",
                   fn);
    else
      ioloop_throw(env, true, "ERR_INVALID_ARG_VALUE",
                   "%s: byteOffset + maxEvents * %d must be <= buffer.byteLength "
                   "(got byteOffset %lld, maxEvents %lld, byteLength %zu)",
                   fn, IOLOOP_EVENT_SIZE, (long long)offset, (long long)max_events,
                   length);
    return false;
  }
  out->out = (uint8_t *)base + offset;
  out->max = max_events > IOLOOP_WAIT_MAX ? IOLOOP_WAIT_MAX : (int)max_events;
  if (timeout_d < 0 || timeout_d >= (double)INT_MAX)
    out->timeout_ms = -1;
  else
    out->timeout_ms = (int)ceil(timeout_d);
  return true;
}

/* epollWait(epfd, buffer, byteOffset, maxEvents, timeoutMs): count or -errno. */
static napi_value epoll_wait_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "epollWait";
  napi_value argv[5];
  void *data = NULL;
  if (!ioloop_args(env, info, 5, argv, &data)) return NULL;
  ioloop_state *st = data;
  int epfd;
  ioloop_wait_args w;
  if (!ioloop_arg_fd(env, argv[0], fn, "epfd", &epfd)) return NULL;
  if (!ioloop_arg_wait(env, argv + 1, fn, &w)) return NULL;

  struct epoll_event evs[IOLOOP_WAIT_MAX];
  struct timespec start;
  if (w.timeout_ms > 0) clock_gettime(CLOCK_MONOTONIC, &start);
  int n;
  int timeout = w.timeout_ms;
  for (;;) {
    st->n_epoll_wait++;
    n = epoll_wait(epfd, evs, w.max, timeout);
    if (n >= 0 || errno != EINTR) break;
    if (w.timeout_ms > 0) {
      /* Wait only for what is left. */
      timeout = ioloop_ms_left(w.timeout_ms, &start);
      if (timeout == 0) {
        n = 0;
        break;
      }
    }
  }
  if (n < 0) return ioloop_int(env, -errno);

  uint8_t *out = w.out;
  for (int i = 0; i < n; i++, out += IOLOOP_EVENT_SIZE) {
    /* epoll_event is packed on x86_64: copy field by field. */
    ioloop_put_record(out, (uint32_t)evs[i].data.u64, evs[i].events & EV_ALL);
  }
  return ioloop_int(env, n);
}

/* wake(fd): add 1 to an eventfd. 0 or -errno; a full counter (EAGAIN) is
 * already a pending wake, so it counts as success. */
static napi_value wake_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data = NULL;
  if (!ioloop_args(env, info, 1, argv, &data)) return NULL;
  ioloop_state *st = data;
  int fd;
  if (!ioloop_arg_fd(env, argv[0], "wake", "fd", &fd)) return NULL;
  uint64_t one = 1;
  ssize_t r;
  do {
    st->n_wakes++;
    r = write(fd, &one, sizeof one);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno != EAGAIN) return ioloop_int(env, -errno);
  return ioloop_int(env, 0);
}

/* consume(fd): read and reset an eventfd's counter: the value, 0 if nothing was
 * pending, or -errno. */
static napi_value consume_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!ioloop_args(env, info, 1, argv, NULL)) return NULL;
  int fd;
  if (!ioloop_arg_fd(env, argv[0], "consume", "fd", &fd)) return NULL;
  uint64_t value = 0;
  ssize_t r;
  do {
    r = read(fd, &value, sizeof value);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return ioloop_int(env, errno == EAGAIN ? 0 : -errno);
  if (r != (ssize_t)sizeof value) return ioloop_int(env, -EINVAL);
  return ioloop_double(env, (double)value);
}

/* close(fd): 0 or -errno. Forgets ownership; stops the guest drivers and
 * watchers of this environment that wait on fd; frees fd's poll set if it is
 * one; takes fd out of this environment's poll sets (as closing a descriptor
 * takes it out of epoll sets). */
static napi_value close_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data = NULL;
  if (!ioloop_args(env, info, 1, argv, &data)) return NULL;
  ioloop_state *st = data;
  int fd;
  if (!ioloop_arg_fd(env, argv[0], "close", "fd", &fd)) return NULL;
  ioloop_guest_forget_fd(st, fd);
  /* Watcher threads leave poll(2) before the number can be reused. */
  ioloop_watcher_forget_fd(st, fd);
  int r;
  if (ioloop_pollset_close(st, fd, &r)) return ioloop_int(env, r);
  ioloop_pollset_forget_fd(st, fd);
  return ioloop_int(env, ioloop_close_fd(fd));
}

static napi_value counters_js(napi_env env, napi_callback_info info) {
  void *data = NULL;
  if (!ioloop_args(env, info, 0, NULL, &data)) return NULL;
  ioloop_state *st = data;
  napi_value obj, v;
  if (napi_create_object(env, &obj) != napi_ok) return NULL;
  const struct {
    const char *name;
    uint64_t value;
  } fields[] = {
      {"epollWait", st->n_epoll_wait},
      {"epollCtl", st->n_epoll_ctl},
      {"wakes", st->n_wakes},
  };
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    if (napi_create_double(env, (double)fields[i].value, &v) != napi_ok ||
        napi_set_named_property(env, obj, fields[i].name, v) != napi_ok)
      return NULL;
  }
  return obj;
}

const ioloop_export ioloop_poller_exports[] = {
    {"epollCreate", epoll_create_js},
    {"epollCtl", epoll_ctl_js},
    {"epollWait", epoll_wait_js},
    {"eventfdOpen", eventfd_open_js},
    {"wake", wake_js},
    {"consume", consume_js},
    {"close", close_js},
    {"counters", counters_js},
    {NULL, NULL},
};
