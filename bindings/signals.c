/* Signals for loops on any thread: one process-wide sigaction handler that
 * wakes every loop watching the signal through the loop's waker (an eventfd).
 *
 * Why not process.on or signalfd: Node delivers process.on signal events only
 * on its main thread and only while its own loop runs (a blocking loop never
 * lets it run), Bun and Deno have their own rules, and signalfd needs the
 * signal blocked in every thread of the process, which a library cannot
 * arrange.
 *
 * The table (process-wide, every environment shares it):
 *   - SIG_SLOTS slots, one per loop that watches signals. A slot holds a
 *     duplicate of the loop's eventfd (its own number, so the loop closing its
 *     waker never leaves the handler writing to a number that was reused),
 *     `watch`, a bit per signal the loop wants, and `pending`, a bit per signal
 *     that arrived and was not yet taken by signalNext.
 *   - The handler reads the table without locks: atomics only, which are
 *     lock-free here (checked below), and write(2), which is
 *     async-signal-safe. Everything else (opening and closing slots,
 *     installing and restoring dispositions) happens under `sig_lock`, a mutex
 *     the handler never takes.
 *   - Reclaiming: the handler counts itself in `in_handler` before it reads the
 *     table and until it is done with what it read. Whoever takes something
 *     away from the handler (a slot's fd, the record of the handler to chain
 *     to) first unpublishes it, then waits for `in_handler` to reach 0, then
 *     closes or frees it. A handler that counts itself after the wait began
 *     can only read the unpublished value (all accesses are sequentially
 *     consistent), so no fd is written after it is closed and no record is
 *     read after it is freed.
 *
 * Dispositions (the rules src/signals.ts documents for users):
 *   - Nothing is installed for a signal no loop watches. The first loop to
 *     watch a signal reads its current disposition (the "previous" one) and
 *     installs the shim's handler: SA_SIGINFO | SA_RESTART (and SA_ONSTACK if
 *     the previous handler had it), every signal blocked while it runs.
 *   - Chaining: after waking the loops, the handler calls the previous handler
 *     when it is a function, as it expects to be called (with siginfo and
 *     context if it asked for SA_SIGINFO). It does not chain to SIG_DFL or
 *     SIG_IGN (a loop handles the signal in place of the default action:
 *     chaining to SIG_DFL would end the process on SIGTERM), nor to a handler
 *     installed with SA_RESETHAND: such a one-shot handler stands in for the
 *     default action (Node's own SIGINT and SIGTERM handler resets the
 *     terminal and raises the signal again to die of it), and calling it from
 *     a handler that stays installed would raise the signal into the same
 *     handler again and again.
 *   - When the last loop stops watching a signal, the previous disposition is
 *     restored exactly (handler, flags and mask; the C library adds its own
 *     SA_RESTORER flag to every disposition it sets), but only if the shim's
 *     handler is still the one installed: code that replaced it since (libuv's
 *     uv_signal_start, which replaces without chaining) owns the signal now,
 *     and restoring over it would break that code.
 *   - signalAdd, and signalReassert, put the shim's handler back when another
 *     handler replaced it, and chain to that one from then on. src/signals.ts
 *     calls signalReassert after Node's process.on for a signal installs or
 *     removes libuv's handler. A replacing handler that itself chains to ours
 *     (as Deno's does) would call ours again from the chain: the handler
 *     notices that its thread is already inside it and returns at once.
 *
 * Delivery: several arrivals of a signal before the loop takes it are one
 * pending bit, so they are seen once. The loop reads its eventfd and then
 * takes the bits; the handler sets the bit and then writes, so a signal is
 * never lost between the two (at worst a wake-up finds nothing).
 *
 * Nothing here aborts: misuse throws, failed syscalls return -errno.
 */
#define _GNU_SOURCE
#include "addon.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2 &&
                   ATOMIC_POINTER_LOCK_FREE == 2,
               "the signal handler needs lock-free atomics");

/* Signal numbers 1..SIG_MAX, a bit each in a uint64_t (bit signo - 1). */
#define SIG_MAX 64
/* Loops that watch signals at once, in the whole process. */
#define SIG_SLOTS 1024

typedef struct {
  _Atomic uint64_t watch;   /* signals this loop watches */
  _Atomic uint64_t pending; /* signals that arrived, not yet taken */
  _Atomic int fd;           /* the duplicate of the loop's eventfd; -1 when free */
  _Atomic uint64_t gen;     /* the open that holds the slot (0: never opened) */
  /* Under sig_lock: */
  bool used;
  ioloop_state *owner;
} sig_slot;

/* Per signal, under sig_lock. */
typedef struct {
  unsigned watchers;     /* slots with this signal's bit in `watch` */
  bool installed;        /* the shim installed its handler and has not restored */
  struct sigaction prev; /* what to restore */
} sig_info;

static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static sig_slot slots[SIG_SLOTS];
static _Atomic int slots_end; /* slots at or past this index were never used */
static sig_info infos[SIG_MAX + 1];
static uint64_t last_gen; /* under sig_lock */
/* The handler to call after waking the loops, per signal; NULL for none. */
static _Atomic(struct sigaction *) chain[SIG_MAX + 1];
/* Handler invocations between counting themselves and being done with the table. */
static _Atomic int in_handler;

/* Threads inside on_signal (their tids; 0: a free entry). A handler that
 * replaced ours and chains to it, over which signalReassert put ours back,
 * calls ours again from the chain: that inner call finds its thread here and
 * returns at once, which ends the cycle. Thread-local storage would say the
 * same more cheaply, but in a dlopen'd library its first use in a thread may
 * allocate, which a signal handler must not. */
#define ACTIVE_MAX 64
static _Atomic pid_t active[ACTIVE_MAX];

static uint64_t bit_of(int signo) { return (uint64_t)1 << (signo - 1); }

static void on_signal(int signo, siginfo_t *info, void *uctx) {
  int saved_errno = errno;
  pid_t tid = (pid_t)syscall(SYS_gettid);
  for (int i = 0; i < ACTIVE_MAX; i++) {
    if (atomic_load(&active[i]) == tid) {
      errno = saved_errno;
      return;
    }
  }
  /* With more threads in the handler at once than entries, a cycle on the
   * threads left out is not detected. */
  int mine = -1;
  for (int i = 0; i < ACTIVE_MAX && mine < 0; i++) {
    pid_t free_entry = 0;
    if (atomic_compare_exchange_strong(&active[i], &free_entry, tid)) mine = i;
  }
  struct sigaction next;
  bool call_next = false;
  atomic_fetch_add(&in_handler, 1);
  if (signo >= 1 && signo <= SIG_MAX) {
    uint64_t bit = bit_of(signo);
    int end = atomic_load(&slots_end);
    for (int i = 0; i < end; i++) {
      sig_slot *s = &slots[i];
      if ((atomic_load(&s->watch) & bit) == 0) continue;
      atomic_fetch_or(&s->pending, bit);
      int fd = atomic_load(&s->fd);
      if (fd < 0) continue;
      uint64_t one = 1;
      ssize_t r;
      /* EAGAIN: the counter is full, so a wake-up is pending already. */
      do r = write(fd, &one, sizeof one);
      while (r < 0 && errno == EINTR);
    }
    struct sigaction *c = atomic_load(&chain[signo]);
    if (c != NULL) {
      next = *c;
      call_next = true;
    }
  }
  atomic_fetch_sub(&in_handler, 1);
  errno = saved_errno;
  if (call_next) {
    if (next.sa_flags & SA_SIGINFO)
      next.sa_sigaction(signo, info, uctx);
    else
      next.sa_handler(signo);
  }
  if (mine >= 0) atomic_store(&active[mine], 0);
  errno = saved_errno;
}

/* Wait until no handler invocation can still use what was unpublished. */
static void wait_handlers(void) {
  while (atomic_load(&in_handler) != 0) sched_yield();
}

static bool is_ours(const struct sigaction *a) {
  return (a->sa_flags & SA_SIGINFO) && a->sa_sigaction == on_signal;
}

/* Whether the shim's handler calls `a` after waking the loops (see the top). */
static bool chains_to(const struct sigaction *a) {
  return a->sa_handler != SIG_DFL && a->sa_handler != SIG_IGN && !is_ours(a) &&
         (a->sa_flags & SA_RESETHAND) == 0;
}

/* Make the shim's handler the one installed for `signo`, taking what is there
 * as the previous disposition unless it is ours already. 1 if it installed,
 * 0 if it was in place, -errno. sig_lock held. */
static int take_over(int signo) {
  struct sigaction cur;
  if (sigaction(signo, NULL, &cur) != 0) return -errno;
  if (is_ours(&cur)) return 0;
  struct sigaction *rec = NULL;
  if (chains_to(&cur)) {
    rec = malloc(sizeof *rec);
    if (rec == NULL) return -ENOMEM;
    *rec = cur;
  }
  struct sigaction act;
  memset(&act, 0, sizeof act);
  act.sa_sigaction = on_signal;
  /* The previous handler runs inside ours: on its alternate stack only if it
   * asked for one. */
  act.sa_flags = SA_SIGINFO | SA_RESTART | (cur.sa_flags & SA_ONSTACK);
  sigfillset(&act.sa_mask);
  /* The chain is published before the handler can run with it. */
  struct sigaction *old = atomic_exchange(&chain[signo], rec);
  struct sigaction seen;
  if (sigaction(signo, &act, &seen) != 0) {
    int e = errno;
    atomic_store(&chain[signo], old);
    wait_handlers();
    free(rec);
    return -e;
  }
  wait_handlers();
  free(old);
  /* `seen` is `cur` unless other code changed the disposition in between. */
  infos[signo].prev = seen;
  infos[signo].installed = true;
  if (!(seen.sa_handler == cur.sa_handler && seen.sa_flags == cur.sa_flags)) {
    struct sigaction *fixed = NULL;
    if (chains_to(&seen) && (fixed = malloc(sizeof *fixed)) != NULL) *fixed = seen;
    old = atomic_exchange(&chain[signo], fixed);
    wait_handlers();
    free(old);
  }
  return 1;
}

/* The last watcher of `signo` is gone: restore the previous disposition if
 * ours is still the one installed. 0 or -errno; on failure nothing changed
 * (ours stays installed and chained, and the next give_back tries again).
 * sig_lock held. */
static int give_back(int signo) {
  sig_info *si = &infos[signo];
  if (!si->installed) return 0;
  struct sigaction cur;
  if (sigaction(signo, NULL, &cur) == 0 && is_ours(&cur) &&
      sigaction(signo, &si->prev, NULL) != 0)
    return -errno;
  struct sigaction *old = atomic_exchange(&chain[signo], NULL);
  wait_handlers();
  free(old);
  si->installed = false;
  memset(&si->prev, 0, sizeof si->prev);
  return 0;
}

/* Stop watching the signals in `bits` for slot `s`. sig_lock held. */
static int unwatch(sig_slot *s, uint64_t bits) {
  int r = 0;
  uint64_t had = atomic_fetch_and(&s->watch, ~bits) & bits;
  atomic_fetch_and(&s->pending, ~bits);
  for (int signo = 1; signo <= SIG_MAX; signo++) {
    if ((had & bit_of(signo)) == 0) continue;
    if (--infos[signo].watchers == 0) {
      int e = give_back(signo);
      if (r == 0) r = e;
    }
  }
  return r;
}

/* Free slot `s`: its signals, then its fd once no handler can write to it.
 * sig_lock held. */
static void close_slot(sig_slot *s) {
  unwatch(s, ~(uint64_t)0);
  int fd = atomic_exchange(&s->fd, -1);
  wait_handlers();
  /* EINTR: the descriptor is released already (see owned.c). */
  if (fd >= 0) close(fd);
  atomic_store(&s->gen, 0);
  s->used = false;
  s->owner = NULL;
}

void ioloop_signal_close_all(ioloop_state *st) {
  pthread_mutex_lock(&sig_lock);
  int end = atomic_load(&slots_end);
  for (int i = 0; i < end; i++)
    if (slots[i].used && slots[i].owner == st) close_slot(&slots[i]);
  pthread_mutex_unlock(&sig_lock);
}

/* ---------------------------------------------------------------- handles */

/* The JS object of an open slot. Freed by its finalizer; `gen` tells whether
 * the slot is still this object's (closing a slot sets its gen to 0, and a
 * reopened slot gets a new one). */
typedef struct {
  int slot;
  uint64_t gen;
} sig_handle;

static const napi_type_tag signal_tag = {0x3f9a6c21d47e4b05ULL, 0xc28e5b17a9d3f460ULL};

/* The slot of `h` if it is still open. sig_lock held, or the caller is the
 * owning environment's thread (only it frees its slots). */
static sig_slot *slot_of(const sig_handle *h) {
  sig_slot *s = &slots[h->slot];
  return atomic_load(&s->gen) == h->gen ? s : NULL;
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sig_handle *h = data;
  pthread_mutex_lock(&sig_lock);
  sig_slot *s = slot_of(h);
  if (s != NULL) close_slot(s);
  pthread_mutex_unlock(&sig_lock);
  free(h);
}

/* The handle behind argument `v`, or NULL with a TypeError thrown. */
static sig_handle *arg_handle(napi_env env, napi_value v, const char *fn) {
  return ioloop_arg_wrapped(env, v, &signal_tag, fn, "h", "an object returned by signalOpen");
}

/* The open slot of argument `v`, or NULL with an Error thrown. */
static sig_slot *arg_open_slot(napi_env env, napi_value v, const char *fn) {
  sig_handle *h = arg_handle(env, v, fn);
  if (h == NULL) return NULL;
  sig_slot *s = slot_of(h);
  if (s == NULL) ioloop_throw(env, false, "ERR_SIGNAL_CLOSED", "%s: signal handle is closed", fn);
  return s;
}

static bool arg_signo(napi_env env, napi_value v, const char *fn, int *out) {
  int64_t x = 0;
  if (!ioloop_arg_int(env, v, fn, "signo", "an integer in [1, 64]", 1, SIG_MAX, &x))
    return false;
  *out = (int)x;
  return true;
}

/* Whether `fd` is an eventfd, as /proc says; true when /proc cannot tell. */
static bool is_eventfd(int fd) {
  char path[64], target[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, target, sizeof target - 1);
  if (n < 0) return true;
  target[n] = '\0';
  return strcmp(target, "anon_inode:[eventfd]") == 0;
}

/* signalOpen(wakerFd): a slot that writes to wakerFd's eventfd. */
static napi_value signal_open_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "signalOpen";
  napi_value argv[1];
  void *data = NULL;
  if (!ioloop_args(env, info, 1, argv, &data)) return NULL;
  ioloop_state *st = data;
  int wfd;
  if (!ioloop_arg_fd(env, argv[0], fn, "wakerFd", &wfd)) return NULL;
  sig_handle *h = malloc(sizeof *h);
  napi_value obj;
  if (h == NULL || napi_create_object(env, &obj) != napi_ok) {
    free(h);
    ioloop_throw(env, false, "ENOMEM", "%s: out of memory", fn);
    return NULL;
  }
  pthread_mutex_lock(&sig_lock);
  int i = 0;
  while (i < SIG_SLOTS && slots[i].used) i++;
  int err = 0, dfd = -1;
  if (i == SIG_SLOTS)
    err = ENOSPC;
  else if ((dfd = fcntl(wfd, F_DUPFD_CLOEXEC, 0)) < 0)
    err = errno;
  else if (!is_eventfd(dfd))
    err = EINVAL;
  if (err != 0) {
    if (dfd >= 0) close(dfd);
    pthread_mutex_unlock(&sig_lock);
    free(h);
    if (err == ENOSPC)
      ioloop_throw_errno(env, err, "%s: %d loops watch signals already", fn, SIG_SLOTS);
    else if (err == EINVAL)
      ioloop_throw_errno(env, err, "%s: wakerFd %d is not an eventfd", fn, wfd);
    else
      ioloop_throw_errno(env, err, "%s: cannot duplicate wakerFd %d", fn, wfd);
    return NULL;
  }
  sig_slot *s = &slots[i];
  s->used = true;
  s->owner = st;
  atomic_store(&s->watch, 0);
  atomic_store(&s->pending, 0);
  atomic_store(&s->gen, ++last_gen);
  atomic_store(&s->fd, dfd);
  if (i >= atomic_load(&slots_end)) atomic_store(&slots_end, i + 1);
  h->slot = i;
  h->gen = atomic_load(&s->gen);
  pthread_mutex_unlock(&sig_lock);
  if (napi_type_tag_object(env, obj, &signal_tag) != napi_ok ||
      napi_wrap(env, obj, h, handle_finalize, NULL, NULL) != napi_ok) {
    handle_finalize(env, h, NULL);
    ioloop_throw(env, false, NULL, "%s: cannot wrap the signal handle", fn);
    return NULL;
  }
  return obj;
}

/* signalAdd(h, signo): watch signo; 0 or -errno. */
static napi_value signal_add_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "signalAdd";
  napi_value argv[2];
  if (!ioloop_args(env, info, 2, argv, NULL)) return NULL;
  sig_slot *s = arg_open_slot(env, argv[0], fn);
  int signo;
  if (s == NULL || !arg_signo(env, argv[1], fn, &signo)) return NULL;
  pthread_mutex_lock(&sig_lock);
  int r = take_over(signo);
  if (r >= 0) {
    uint64_t bit = bit_of(signo);
    if ((atomic_fetch_or(&s->watch, bit) & bit) == 0) infos[signo].watchers++;
    r = 0;
  }
  pthread_mutex_unlock(&sig_lock);
  return ioloop_int(env, r);
}

/* signalRemove(h, signo): stop watching signo; 0 or -errno. */
static napi_value signal_remove_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "signalRemove";
  napi_value argv[2];
  if (!ioloop_args(env, info, 2, argv, NULL)) return NULL;
  sig_slot *s = arg_open_slot(env, argv[0], fn);
  int signo;
  if (s == NULL || !arg_signo(env, argv[1], fn, &signo)) return NULL;
  pthread_mutex_lock(&sig_lock);
  int r = unwatch(s, bit_of(signo));
  pthread_mutex_unlock(&sig_lock);
  return ioloop_int(env, r);
}

/* signalNext(h): the lowest signal that arrived and was not taken (clearing
 * it), or 0. No lock: only this environment frees its slot. */
static napi_value signal_next_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!ioloop_args(env, info, 1, argv, NULL)) return NULL;
  sig_slot *s = arg_open_slot(env, argv[0], "signalNext");
  if (s == NULL) return NULL;
  uint64_t m = atomic_load(&s->pending);
  while (m != 0) {
    uint64_t bit = m & (~m + 1);
    if (atomic_compare_exchange_weak(&s->pending, &m, m & ~bit))
      return ioloop_int(env, __builtin_ctzll(bit) + 1);
  }
  return ioloop_int(env, 0);
}

/* signalClose(h): stop watching everything and release the slot. Idempotent. */
static napi_value signal_close_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!ioloop_args(env, info, 1, argv, NULL)) return NULL;
  sig_handle *h = arg_handle(env, argv[0], "signalClose");
  if (h == NULL) return NULL;
  pthread_mutex_lock(&sig_lock);
  sig_slot *s = slot_of(h);
  if (s != NULL) close_slot(s);
  pthread_mutex_unlock(&sig_lock);
  return ioloop_undefined(env);
}

/* signalReassert(signo): if loops watch signo and another handler replaced
 * the shim's, install the shim's again (chaining to that one). 1 if it did,
 * 0 if nothing was to do, -errno. */
static napi_value signal_reassert_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!ioloop_args(env, info, 1, argv, NULL)) return NULL;
  int signo;
  if (!arg_signo(env, argv[0], "signalReassert", &signo)) return NULL;
  pthread_mutex_lock(&sig_lock);
  int r = infos[signo].watchers > 0 ? take_over(signo) : 0;
  pthread_mutex_unlock(&sig_lock);
  return ioloop_int(env, r);
}

static bool set_prop(napi_env env, napi_value obj, const char *name, napi_value v) {
  return v != NULL && napi_set_named_property(env, obj, name, v) == napi_ok;
}

static napi_value string_value(napi_env env, const char *s) {
  napi_value v = NULL;
  if (napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v) != napi_ok) return NULL;
  return v;
}

static void describe_handler(const struct sigaction *a, char *out, size_t size) {
  if (a == NULL)
    out[0] = '\0';
  else
    snprintf(out, size, "0x%" PRIxPTR,
             (uintptr_t)((a->sa_flags & SA_SIGINFO) ? (void *)a->sa_sigaction
                                                    : (void *)a->sa_handler));
}

/* signalDisposition(signo): what is installed for signo now, for tests and
 * diagnostics. */
static napi_value signal_disposition_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "signalDisposition";
  napi_value argv[1];
  if (!ioloop_args(env, info, 1, argv, NULL)) return NULL;
  int signo;
  if (!arg_signo(env, argv[0], fn, &signo)) return NULL;
  pthread_mutex_lock(&sig_lock);
  struct sigaction cur;
  int r = sigaction(signo, NULL, &cur) == 0 ? 0 : errno;
  unsigned loops = infos[signo].watchers;
  char address[32], chained[32];
  describe_handler(&cur, address, sizeof address);
  describe_handler(atomic_load(&chain[signo]), chained, sizeof chained);
  pthread_mutex_unlock(&sig_lock);
  if (r != 0) {
    ioloop_throw_errno(env, r, "%s: sigaction(%d)", fn, signo);
    return NULL;
  }
  const char *action = cur.sa_handler == SIG_DFL   ? "default"
                       : cur.sa_handler == SIG_IGN ? "ignore"
                       : is_ours(&cur)             ? "loop"
                                                   : "handler";
  uint32_t mask = 0;
  for (int i = 1; i <= 32; i++)
    if (sigismember(&cur.sa_mask, i) == 1) mask |= (uint32_t)1 << (i - 1);
  napi_value obj, flags, mask_v, count;
  if (napi_create_object(env, &obj) != napi_ok ||
      napi_create_uint32(env, (uint32_t)cur.sa_flags, &flags) != napi_ok ||
      napi_create_uint32(env, mask, &mask_v) != napi_ok ||
      napi_create_uint32(env, loops, &count) != napi_ok ||
      !set_prop(env, obj, "action", string_value(env, action)) ||
      !set_prop(env, obj, "handler", string_value(env, address)) ||
      !set_prop(env, obj, "flags", flags) ||
      !set_prop(env, obj, "mask", mask_v) ||
      !set_prop(env, obj, "loops", count) ||
      !set_prop(env, obj, "chained", string_value(env, chained))) {
    ioloop_throw(env, false, NULL, "%s: cannot build the result", fn);
    return NULL;
  }
  return obj;
}

const ioloop_export ioloop_signal_exports[] = {
    {"signalOpen", signal_open_js},
    {"signalAdd", signal_add_js},
    {"signalRemove", signal_remove_js},
    {"signalNext", signal_next_js},
    {"signalClose", signal_close_js},
    {"signalReassert", signal_reassert_js},
    {"signalDisposition", signal_disposition_js},
    {NULL, NULL},
};
