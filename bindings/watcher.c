/* The watcher: a thread that waits for a poller to become ready (or for the
 * runtime's deadline) and turns the runtime's loop through a thread-safe
 * function. It is the guest driver for hosts without libuv, and for poll sets
 * in every host.
 *
 * What it waits on, with poll(2), beside its own eventfd (`listener.efd`,
 * which only interrupts it):
 *   - kind 'epoll': the epoll fd, for POLLIN. Polling an epoll fd reports
 *     whether any registration is ready without consuming anything, so the
 *     loop's epollWait afterwards sees everything.
 *   - kind 'poll': a copy of the poll set's pollfds (its eventfd included),
 *     taken under the set's lock and taken again whenever the set's generation
 *     moved. pollCtl writes to the listener's eventfd while the thread may be
 *     in poll(2) on an older copy, so it always waits on the current set.
 *
 * Turns (the contract src/ relies on):
 *   - watcherArm(w, ms) arms one wait: readiness gives onTurn(IOLOOP_TURN_IO),
 *     the deadline (now + ms, rounded up) onTurn(IOLOOP_TURN_TIMER); ms < 0 or
 *     Infinity means no deadline, 0 means turn at once. After a turn the
 *     thread waits for the next watcherArm before polling again, so a
 *     descriptor that stays ready costs one turn per arm, never a spin.
 *     Arming again replaces the deadline, also during a wait (the thread is
 *     interrupted and waits again with the new one).
 *   - The thread waits only while the watcher is started and armed. An arm
 *     made while stopped is kept (its deadline still counts from the arm) and
 *     the wait begins at watcherStart; watcherStop disarms.
 *   - A failing poll(2), or a poller fd found closed (POLLNVAL), turns with
 *     onTurn(-errno) once; the watcher then waits no more (arms are recorded
 *     but ignored) until watcherStop and watcherStart. A poller closed behind
 *     the shim's back during a wait is found at the next wait: closing a
 *     descriptor does not end a poll(2) already waiting on it. (close()
 *     through the shim stops the watcher first, so it never gets there.)
 *   - onTurn runs on the loop thread through napi_make_callback, as a guest's
 *     does, so ticks and microtasks run right after it; an exception it throws
 *     goes to the host's uncaught-exception handling.
 *   - Several turns queued before the loop thread runs them are delivered as
 *     one (the last reason), and a turn queued before watcherStop is dropped:
 *     the reason travels in `pending`, which watcherStop clears.
 *
 * Threads and locks:
 *   - The thread never calls into JavaScript; it only calls the
 *     thread-safe function, and only while holding `lock` and while the host
 *     has not finalized it (tsfn_finalize clears `tsfn` under the same lock).
 *   - Fields under "guarded by lock" are shared; the thread's scratch belongs
 *     to the thread; the rest belongs to the loop thread (the environment's).
 *   - watcherStop returns only when the thread is outside poll(2) (it is
 *     interrupted and acknowledges on `idle`), so close() can free a set or
 *     close a descriptor the moment after stopping the watchers that wait on
 *     it, and no number is polled after it may have been reused.
 *   - The thread blocks every signal, so the host's signal handling never runs
 *     on it.
 *
 * Lifetime:
 *   - The thread-safe function is unreferenced while the watcher is stopped
 *     (a stopped or closed watcher never keeps the host alive) and referenced
 *     while it is started. The JS object is held weakly while stopped (its
 *     finalizer closes a watcher collected unclosed) and strongly while
 *     started; onTurn lives on the object and is reached through a weak
 *     reference, so a callback that captures the object does not pin it. The
 *     thread-safe function is made without a JS function for the same reason.
 *   - watcherClose stops the thread, joins it and releases the thread-safe
 *     function. The struct is freed once it is closed, the wrapper's finalizer
 *     has run and the host has finalized the thread-safe function, whichever
 *     comes last.
 *   - Each watcher adds its own environment cleanup hook after creating its
 *     thread-safe function. Hooks run in reverse order of addition, so the
 *     watcher's thread is joined before the host tears the function down.
 */
#define _GNU_SOURCE
#include "addon.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum { KIND_EPOLL = 1, KIND_POLL = 2 };

/* The thread calls little beyond poll(2) and the host's thread-safe function. */
#define THREAD_STACK (256 * 1024)

struct ioloop_watcher {
  /* Fixed from watcherOpen on. */
  ioloop_state *st;
  napi_env env;
  int kind;
  int fd;                       /* the poller: an epoll fd or a set's fd */
  ioloop_set_listener listener; /* efd interrupts the thread's poll(2) */

  pthread_mutex_t lock;
  pthread_cond_t work; /* the thread waits here for an arm or close */
  pthread_cond_t idle; /* the loop thread waits here for the thread to leave poll(2) */
  /* Guarded by lock. */
  ioloop_pollset *set; /* kind 'poll': the set, NULL once let go */
  bool run;            /* started, as the thread sees it */
  bool armed;
  bool failed;
  bool closing;
  bool in_poll;
  bool has_deadline;
  struct timespec deadline; /* CLOCK_MONOTONIC */
  uint64_t arm_seq;
  int pending; /* the reason of a turn not yet delivered, 0 if none */
  napi_threadsafe_function tsfn; /* NULL once the host finalized it */

  /* The thread's own. */
  struct pollfd *fds;
  size_t fds_cap;
  uint64_t set_gen;

  /* The loop thread's own. */
  pthread_t thread;
  bool thread_running;
  napi_ref self; /* weak while stopped, strong while started */
  napi_ref turn; /* weak: onTurn, which the object itself holds */
  napi_async_context async_context;
  bool started;
  bool closed;
  bool fd_gone;   /* close() closed the poller */
  bool wrapped;   /* the wrapper's finalizer has not run yet */
  bool tsfn_live; /* the host has not finalized the thread-safe function */
  bool hook_added;
  ioloop_watcher *prev, *next;
};

/* Marks our wrapped objects, so that no other object is taken for a watcher. */
static const napi_type_tag watcher_tag = {0x5e0c7a91d24b4f38ULL, 0x9b61e2f4a7c83d05ULL};

static void drain_eventfd(int fd) {
  uint64_t value;
  ssize_t r;
  do {
    r = read(fd, &value, sizeof value);
  } while (r < 0 && errno == EINTR);
}

/* Lock held: make the thread's poll(2) return. */
static void interrupt(ioloop_watcher *w) {
  static const uint64_t one = 1;
  ssize_t r;
  do {
    r = write(w->listener.efd, &one, sizeof one);
  } while (r < 0 && errno == EINTR);
}

/* Lock held: whether the thread has something to wait for. */
static bool runnable(const ioloop_watcher *w) {
  return w->run && w->armed && !w->failed && (w->kind == KIND_EPOLL || w->set != NULL);
}

/* Whole milliseconds until `deadline`, rounded up (so poll(2) never ends
 * first), 0 once it has passed, at most INT_MAX (the thread then waits again). */
static int ms_until(const struct timespec *deadline) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  int64_t sec = (int64_t)(deadline->tv_sec - now.tv_sec);
  /* A deadline years away (arming allows up to 2**53 ms) would overflow the
   * nanoseconds; the longest wait is enough, the thread then waits again. */
  if (sec > INT_MAX / 1000) return INT_MAX;
  int64_t ns = sec * 1000000000 + (deadline->tv_nsec - now.tv_nsec);
  if (ns <= 0) return 0;
  int64_t ms = (ns + 999999) / 1000000;
  return ms > INT_MAX ? INT_MAX : (int)ms;
}

static bool reached(const struct timespec *deadline) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec > deadline->tv_sec ||
         (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Lock held, after a poll(2) that found `nfds` entries with something: the
 * turn's reason, or 0 if only the thread's own eventfd fired. */
static int scan(ioloop_watcher *w, int nfds) {
  short poller = w->fds[1].revents;
  /* The epoll fd or the set's eventfd was closed behind the shim's back. */
  if (poller & POLLNVAL) return -EBADF;
  if (poller != 0) {
    /* For a set, a wake(pfd): drained here, or it would stay readable. */
    if (w->kind == KIND_POLL) drain_eventfd(w->fds[1].fd);
    return IOLOOP_TURN_IO;
  }
  for (int i = 2; i < nfds; i++)
    if (w->fds[i].revents != 0) return IOLOOP_TURN_IO;
  return 0;
}

static void *watch_main(void *arg) {
  ioloop_watcher *w = arg;
  pthread_mutex_lock(&w->lock);
  for (;;) {
    while (!w->closing && !runnable(w)) pthread_cond_wait(&w->work, &w->lock);
    if (w->closing) break;
    const uint64_t seq = w->arm_seq;
    const bool has_deadline = w->has_deadline;
    const struct timespec deadline = w->deadline;
    ioloop_pollset *set = w->set;
    /* Before the copy, so that a pollCtl after the copy sees `polling` and
     * interrupts (see pollset.c). */
    w->in_poll = true;
    atomic_store(&w->listener.polling, true);
    pthread_mutex_unlock(&w->lock);

    int nfds = 2, ready = 0, err = 0;
    if (w->kind == KIND_POLL) {
      int n = ioloop_pollset_snapshot(set, &w->fds, &w->fds_cap, 1, &w->set_gen);
      if (n < 0)
        err = -n;
      else
        nfds = 1 + n;
    } else {
      w->fds[1].fd = w->fd;
      w->fds[1].events = POLLIN;
    }
    w->fds[0].fd = w->listener.efd;
    w->fds[0].events = POLLIN;
    if (err == 0) {
      ready = poll(w->fds, (nfds_t)nfds, has_deadline ? ms_until(&deadline) : -1);
      if (ready < 0) err = errno;
    }

    pthread_mutex_lock(&w->lock);
    w->in_poll = false;
    atomic_store(&w->listener.polling, false);
    pthread_cond_broadcast(&w->idle);
    if (ready > 0 && w->fds[0].revents != 0) drain_eventfd(w->listener.efd);
    if (w->closing) break;
    if (!runnable(w) || err == EINTR) continue;
    int reason = err != 0 ? -err : ready > 0 ? scan(w, nfds) : 0;
    if (reason == 0) {
      /* Woken to re-read the arming or the set, or early: wait again. */
      if (w->arm_seq != seq || !has_deadline || !reached(&deadline)) continue;
      reason = IOLOOP_TURN_TIMER;
    }
    if (reason < 0) w->failed = true;
    w->armed = false;
    w->pending = reason;
    if (w->tsfn != NULL) napi_call_threadsafe_function(w->tsfn, NULL, napi_tsfn_nonblocking);
  }
  pthread_mutex_unlock(&w->lock);
  return NULL;
}

static void watcher_maybe_free(ioloop_watcher *w) {
  if (!w->closed || w->wrapped || w->tsfn_live) return;
  pthread_mutex_destroy(&w->lock);
  pthread_cond_destroy(&w->work);
  pthread_cond_destroy(&w->idle);
  free(w->fds);
  free(w);
}

/* Stop the thread's waiting and return once it is outside poll(2). */
static void watcher_halt(ioloop_watcher *w) {
  pthread_mutex_lock(&w->lock);
  w->run = false;
  w->armed = false;
  w->pending = 0;
  if (w->in_poll) {
    interrupt(w);
    while (w->in_poll) pthread_cond_wait(&w->idle, &w->lock);
  }
  pthread_mutex_unlock(&w->lock);
}

static void watcher_stop(ioloop_watcher *w) {
  watcher_halt(w);
  if (!w->started) return;
  w->started = false;
  if (w->tsfn_live) napi_unref_threadsafe_function(w->env, w->tsfn);
  if (w->self != NULL) napi_reference_unref(w->env, w->self, NULL);
}

/* Kind 'poll': stop listening to the set and forget it. */
static void watcher_let_go_of_set(ioloop_watcher *w) {
  if (w->kind != KIND_POLL) return;
  pthread_mutex_lock(&w->lock);
  ioloop_pollset *set = w->set;
  w->set = NULL;
  pthread_mutex_unlock(&w->lock);
  if (set != NULL) ioloop_pollset_unlisten(set, &w->listener);
}

static void watcher_unlink(ioloop_watcher *w) {
  if (w->prev != NULL)
    w->prev->next = w->next;
  else if (w->st->watchers == w)
    w->st->watchers = w->next;
  if (w->next != NULL) w->next->prev = w->prev;
  w->prev = w->next = NULL;
}

static void watcher_env_cleanup(void *arg);

/* End the thread and release everything but the struct. Idempotent. The
 * release of the thread-safe function comes last: the host may finalize it
 * (and so free the struct) before napi_release_threadsafe_function returns. */
static void watcher_close(ioloop_watcher *w) {
  if (w->closed) return;
  w->closed = true;
  watcher_halt(w);
  w->started = false;
  if (w->thread_running) {
    pthread_mutex_lock(&w->lock);
    w->closing = true;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    w->thread_running = false;
  }
  watcher_let_go_of_set(w);
  watcher_unlink(w);
  napi_env env = w->env;
  if (w->hook_added) {
    w->hook_added = false;
    napi_remove_env_cleanup_hook(env, watcher_env_cleanup, w);
  }
  if (w->self != NULL) {
    napi_delete_reference(env, w->self);
    w->self = NULL;
  }
  if (w->turn != NULL) {
    napi_delete_reference(env, w->turn);
    w->turn = NULL;
  }
  if (w->async_context != NULL) {
    napi_async_destroy(env, w->async_context);
    w->async_context = NULL;
  }
  if (w->listener.efd >= 0) {
    close(w->listener.efd);
    w->listener.efd = -1;
  }
  if (w->tsfn_live) {
    pthread_mutex_lock(&w->lock);
    napi_threadsafe_function tsfn = w->tsfn;
    pthread_mutex_unlock(&w->lock);
    if (tsfn != NULL) napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  }
}

/* The environment is going away: the hook has run, so it is not removed. */
static void watcher_env_cleanup(void *arg) {
  ioloop_watcher *w = arg;
  w->hook_added = false;
  watcher_close(w);
}

static void watcher_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  ioloop_watcher *w = data;
  watcher_close(w);
  w->wrapped = false;
  watcher_maybe_free(w);
}

static void tsfn_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  ioloop_watcher *w = data;
  pthread_mutex_lock(&w->lock);
  w->tsfn = NULL;
  pthread_mutex_unlock(&w->lock);
  w->tsfn_live = false;
  watcher_maybe_free(w);
}

/* On the loop thread, for each call the thread made. */
static void call_turn(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  (void)data;
  ioloop_watcher *w = context;
  if (env == NULL || w->closed) return; /* torn down, or closed since */
  pthread_mutex_lock(&w->lock);
  int reason = w->pending;
  w->pending = 0;
  pthread_mutex_unlock(&w->lock);
  if (reason == 0 || !w->started) return;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value self = NULL, fn = NULL, arg, result;
  if (napi_get_reference_value(env, w->self, &self) == napi_ok && self != NULL &&
      napi_get_reference_value(env, w->turn, &fn) == napi_ok && fn != NULL &&
      napi_create_int32(env, reason, &arg) == napi_ok) {
    napi_status s = napi_make_callback(env, w->async_context, self, fn, 1, &arg, &result);
    /* napi_pending_exception also means "cannot call into JS" (an environment
     * being torn down) with nothing thrown: only a real throw is reported. */
    bool thrown = false;
    napi_value error;
    if (s == napi_pending_exception && napi_is_exception_pending(env, &thrown) == napi_ok &&
        thrown && napi_get_and_clear_last_exception(env, &error) == napi_ok)
      napi_fatal_exception(env, error);
  }
  napi_close_handle_scope(env, scope);
}

/* The watcher behind argument `v`, or NULL with a TypeError/Error thrown. A
 * closed watcher is an Error unless allow_closed. */
static ioloop_watcher *arg_watcher(napi_env env, napi_value v, const char *fn,
                                   bool allow_closed) {
  ioloop_watcher *w = ioloop_arg_wrapped(env, v, &watcher_tag, fn, "w", "an object returned by watcherOpen");
  if (w == NULL) return NULL;
  if (w->closed && !allow_closed) {
    ioloop_throw(env, false, "ERR_WATCHER_CLOSED", "%s: watcher is closed", fn);
    return NULL;
  }
  return w;
}

static bool arg_kind(napi_env env, napi_value v, const char *fn, int *kind) {
  char buf[8]; /* longer strings are cut short and match neither */
  size_t len = 0;
  napi_valuetype t = napi_undefined;
  if (napi_typeof(env, v, &t) == napi_ok && t == napi_string &&
      napi_get_value_string_utf8(env, v, buf, sizeof buf, &len) == napi_ok &&
      strlen(buf) == len) {
    if (strcmp(buf, "epoll") == 0) {
      *kind = KIND_EPOLL;
      return true;
    }
    if (strcmp(buf, "poll") == 0) {
      *kind = KIND_POLL;
      return true;
    }
  }
  ioloop_throw_arg(env, v, fn, "kind", "'epoll' or 'poll'");
  return false;
}

/* Check pollerFd for `kind`, using `probe` (an eventfd of our own) to tell an
 * epoll fd from anything else. False with an exception thrown. */
static bool check_poller(napi_env env, ioloop_state *st, napi_value v, int kind, int fd,
                         int probe, ioloop_pollset **set) {
  static const char fn[] = "watcherOpen";
  if (fcntl(fd, F_GETFD) < 0) {
    ioloop_throw(env, false, "EBADF", "%s: pollerFd %d is closed", fn, fd);
    return false;
  }
  if (kind == KIND_POLL) {
    *set = ioloop_pollset_find(st, fd);
    if (*set == NULL) {
      ioloop_throw_arg(env, v, fn, "pollerFd",
                       "a poll set from this environment's pollCreate when kind is 'poll'");
      return false;
    }
    return true;
  }
  /* Deleting a descriptor that was never added answers ENOENT from an epoll
   * fd and EINVAL from anything else, and changes nothing. */
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  if (epoll_ctl(fd, EPOLL_CTL_DEL, probe, &ev) == 0 || errno == ENOENT) return true;
  if (errno == EINVAL) {
    ioloop_throw_arg(env, v, fn, "pollerFd", "an epoll fd when kind is 'epoll'");
    return false;
  }
  ioloop_throw_errno(env, errno, "%s: cannot use pollerFd %d", fn, fd);
  return false;
}

/* The thread, started with every signal blocked (it inherits the mask). */
static int start_thread(ioloop_watcher *w) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_attr_t attr;
  int r = pthread_attr_init(&attr);
  if (r != 0) return r;
  pthread_attr_setstacksize(&attr, THREAD_STACK);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  r = pthread_create(&w->thread, &attr, watch_main, w);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (r == 0) w->thread_running = true;
  return r;
}

/* watcherOpen(pollerFd, kind, onTurn): a stopped watcher. */
static napi_value watcher_open_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "watcherOpen";
  napi_value argv[3];
  void *data = NULL;
  if (!ioloop_args(env, info, 3, argv, &data)) return NULL;
  ioloop_state *st = data;
  int fd, kind;
  if (!ioloop_arg_fd(env, argv[0], fn, "pollerFd", &fd)) return NULL;
  if (!arg_kind(env, argv[1], fn, &kind)) return NULL;
  if (!ioloop_arg_function(env, argv[2], fn, "onTurn")) return NULL;

  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (efd < 0) {
    ioloop_throw_errno(env, errno, "%s: cannot create an eventfd", fn);
    return NULL;
  }
  ioloop_pollset *set = NULL;
  if (!check_poller(env, st, argv[0], kind, fd, efd, &set)) {
    close(efd);
    return NULL;
  }
  napi_value obj, name;
  napi_property_descriptor prop = {"onTurn", NULL, NULL, NULL, NULL, argv[2],
                                   napi_default, NULL};
  ioloop_watcher *w = calloc(1, sizeof *w);
  struct pollfd *fds = malloc(2 * sizeof *fds);
  if (w == NULL || fds == NULL) {
    free(w);
    free(fds);
    close(efd);
    ioloop_throw(env, false, "ENOMEM", "%s: out of memory", fn);
    return NULL;
  }
  if (napi_create_object(env, &obj) != napi_ok ||
      napi_define_properties(env, obj, 1, &prop) != napi_ok ||
      napi_create_string_utf8(env, "wasm_ioloop.watcher", NAPI_AUTO_LENGTH, &name) !=
          napi_ok) {
    free(w);
    free(fds);
    close(efd);
    ioloop_throw(env, false, NULL, "%s: cannot create the watcher object", fn);
    return NULL;
  }
  w->st = st;
  w->env = env;
  w->kind = kind;
  w->fd = fd;
  w->listener.efd = efd;
  atomic_init(&w->listener.polling, false);
  w->set = set;
  w->fds = fds;
  w->fds_cap = 2;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->work, NULL);
  pthread_cond_init(&w->idle, NULL);
  napi_threadsafe_function tsfn = NULL;
  if (napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, w, tsfn_finalize, w,
                                      call_turn, &tsfn) != napi_ok) {
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->idle);
    free(w);
    free(fds);
    close(efd);
    ioloop_throw(env, false, NULL, "%s: cannot create the thread-safe function", fn);
    return NULL;
  }
  w->tsfn = tsfn;
  w->tsfn_live = true;
  /* From here on failures go through watcher_close; the struct is freed when
   * the host finalizes the thread-safe function (and the wrapper, if made). */
  w->next = st->watchers;
  if (w->next != NULL) w->next->prev = w;
  st->watchers = w;
  if (set != NULL) ioloop_pollset_listen(set, &w->listener);

  const char *failed = NULL;
  int r = 0;
  if (napi_unref_threadsafe_function(env, tsfn) != napi_ok ||
      napi_async_init(env, NULL, name, &w->async_context) != napi_ok) {
    failed = "cannot set up the thread-safe function";
  } else if (napi_type_tag_object(env, obj, &watcher_tag) != napi_ok ||
             napi_wrap(env, obj, w, watcher_finalize, NULL, NULL) != napi_ok) {
    failed = "cannot wrap the watcher object";
  } else {
    w->wrapped = true;
    if (napi_create_reference(env, obj, 0, &w->self) != napi_ok ||
        napi_create_reference(env, argv[2], 0, &w->turn) != napi_ok) {
      failed = "cannot reference the watcher object";
    } else if (napi_add_env_cleanup_hook(env, watcher_env_cleanup, w) != napi_ok) {
      failed = "cannot add a cleanup hook";
    } else {
      w->hook_added = true;
      r = start_thread(w);
      if (r != 0) failed = "cannot start the thread";
    }
  }
  if (failed != NULL) {
    watcher_close(w); /* may free w, if it was never wrapped */
    if (r != 0)
      ioloop_throw_errno(env, r, "%s: %s", fn, failed);
    else
      ioloop_throw(env, false, NULL, "%s: %s", fn, failed);
    return NULL;
  }
  return obj;
}

/* watcherStart(w): wait when armed; a started watcher keeps the host alive. */
static napi_value watcher_start_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "watcherStart";
  napi_value argv[1];
  if (!ioloop_args(env, info, 1, argv, NULL)) return NULL;
  ioloop_watcher *w = arg_watcher(env, argv[0], fn, false);
  if (w == NULL) return NULL;
  if (w->started) return ioloop_undefined(env);
  if (w->fd_gone || fcntl(w->fd, F_GETFD) < 0) {
    ioloop_throw(env, false, "EBADF", "%s: pollerFd %d is closed", fn, w->fd);
    return NULL;
  }
  if (!w->tsfn_live || napi_reference_ref(env, w->self, NULL) != napi_ok) {
    ioloop_throw(env, false, NULL, "%s: the watcher's environment is shutting down", fn);
    return NULL;
  }
  napi_ref_threadsafe_function(env, w->tsfn);
  w->started = true;
  pthread_mutex_lock(&w->lock);
  w->run = true;
  w->failed = false;
  if (runnable(w)) pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->lock);
  return ioloop_undefined(env);
}

/* watcherArm(w, timeoutMs): arm one turn; see the top of the file. */
static napi_value watcher_arm_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "watcherArm";
  napi_value argv[2];
  if (!ioloop_args(env, info, 2, argv, NULL)) return NULL;
  ioloop_watcher *w = arg_watcher(env, argv[0], fn, false);
  if (w == NULL) return NULL;
  double ms;
  if (!ioloop_arg_number(env, argv[1], fn, "timeoutMs",
                         "a number (< 0 or Infinity: no timeout)", &ms))
    return NULL;
  struct timespec deadline = {0, 0};
  bool has_deadline = !(ms < 0 || isinf(ms));
  if (has_deadline) {
    /* Beyond 2**53 ms (285,000 years) is forever in practice; the clamp keeps
     * the arithmetic defined. */
    double whole = ms > 9007199254740992.0 ? 9007199254740992.0 : ceil(ms);
    int64_t add = (int64_t)whole;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(add / 1000);
    deadline.tv_nsec += (long)(add % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
  }
  pthread_mutex_lock(&w->lock);
  w->armed = true;
  w->has_deadline = has_deadline;
  w->deadline = deadline;
  w->arm_seq++;
  if (w->in_poll)
    interrupt(w);
  else if (runnable(w))
    pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->lock);
  return ioloop_undefined(env);
}

/* watcherStop(w): stop waiting, disarm, drop an undelivered turn,
 * unreference. Returns once the thread is outside poll(2). Idempotent. */
static napi_value watcher_stop_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!ioloop_args(env, info, 1, argv, NULL)) return NULL;
  ioloop_watcher *w = arg_watcher(env, argv[0], "watcherStop", false);
  if (w == NULL) return NULL;
  watcher_stop(w);
  return ioloop_undefined(env);
}

/* watcherClose(w): end the thread and release everything. Idempotent. */
static napi_value watcher_close_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!ioloop_args(env, info, 1, argv, NULL)) return NULL;
  ioloop_watcher *w = arg_watcher(env, argv[0], "watcherClose", true);
  if (w == NULL) return NULL;
  watcher_close(w);
  return ioloop_undefined(env);
}

void ioloop_watcher_forget_fd(ioloop_state *st, int fd) {
  for (ioloop_watcher *w = st->watchers; w != NULL; w = w->next) {
    if (w->fd != fd) continue;
    w->fd_gone = true;
    watcher_stop(w);
    watcher_let_go_of_set(w);
  }
}

void ioloop_watcher_close_all(ioloop_state *st) {
  while (st->watchers != NULL) watcher_close(st->watchers);
}

const ioloop_export ioloop_watcher_exports[] = {
    {"watcherOpen", watcher_open_js},
    {"watcherStart", watcher_start_js},
    {"watcherArm", watcher_arm_js},
    {"watcherStop", watcher_stop_js},
    {"watcherClose", watcher_close_js},
    {NULL, NULL},
};
