/* The guest driver: our epoll fd watched by Node's own libuv loop.
 *
 * A guest is a uv_poll_t on the epoll fd (readable = some registered
 * descriptor is ready) and one uv_timer_t armed for the core's earliest
 * deadline. Either one calls onTurn(reason) through napi_make_callback, so Node
 * runs microtasks and process.nextTick after it as it does after its own
 * callbacks: reason IOLOOP_TURN_IO (1) = the epoll fd is readable,
 * IOLOOP_TURN_TIMER (2) = the timer fired, a negative number = libuv reported
 * -errno for the poll (the poll is stopped).
 *
 * Lifetime:
 *   - guestOpen makes both handles stopped and unreferenced: an open guest
 *     never keeps Node alive. guestStart references them, guestStop
 *     unreferences them again.
 *   - The JS object is held weakly while stopped (the finalizer closes a guest
 *     that is collected unclosed) and strongly while started, as Node roots its
 *     own active handles. onTurn lives on that object, not in a strong native
 *     reference, so a callback that captures the object does not pin it.
 *   - The struct is freed when both the wrapper's finalizer has run and both
 *     handles' close callbacks have run, whichever comes last.
 *   - libuv aborts if asked to watch a closed descriptor, so guestStart checks
 *     the fd and close() stops any guest of its environment that watches the
 *     fd being closed. Closing the epoll fd any other way while a guest watches
 *     it is misuse that this file cannot see.
 *   - At most one guest per epoll fd is started at a time (libuv delivers an
 *     fd's events to one handle). Other guests may be open on the same fd;
 *     when one of them stops or closes, the started one is registered again
 *     (see rearm_peer).
 *
 * libuv is reached only through function pointers looked up with dlsym the
 * first time guestOpen runs (the `libuv` table below). The shim therefore links against no
 * libuv symbol and loads in hosts that implement N-API without libuv; there
 * guestOpen throws an Error with code 'ENOSYS' naming the missing function,
 * and the runtime uses the watcher driver (watcher.c) instead. Every other
 * function in this file runs only on a guest that guestOpen made, so only after
 * the lookup succeeded. uv.h is included for the handle types alone.
 */
#define _GNU_SOURCE
#include "addon.h"
#include "util.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <uv.h>

/* The libuv functions the guest driver calls, as the host process provides
 * them. Written once under libuv_once, read-only afterwards. */
static struct {
  int (*poll_init)(uv_loop_t *, uv_poll_t *, int);
  int (*poll_start)(uv_poll_t *, int, uv_poll_cb);
  int (*poll_stop)(uv_poll_t *);
  int (*timer_init)(uv_loop_t *, uv_timer_t *);
  int (*timer_start)(uv_timer_t *, uv_timer_cb, uint64_t, uint64_t);
  int (*timer_stop)(uv_timer_t *);
  void (*close)(uv_handle_t *, uv_close_cb);
  void (*ref)(uv_handle_t *);
  void (*unref)(uv_handle_t *);
  void (*update_time)(uv_loop_t *);
  /* N-API, but only meaningful where libuv exists, and not every host that
   * implements N-API exports it. */
  napi_status (*get_uv_event_loop)(napi_env, struct uv_loop_s **);
} libuv;

/* The first function the host lacks, or NULL when all were found. */
static const char *libuv_missing;
static pthread_once_t libuv_once = PTHREAD_ONCE_INIT;

static void libuv_resolve(void) {
  /* Object pointers and function pointers convert through void * on every
   * POSIX system, which is what dlsym relies on. */
  const struct {
    const char *name;
    void **slot;
  } table[] = {
      {"uv_poll_init", (void **)&libuv.poll_init},
      {"uv_poll_start", (void **)&libuv.poll_start},
      {"uv_poll_stop", (void **)&libuv.poll_stop},
      {"uv_timer_init", (void **)&libuv.timer_init},
      {"uv_timer_start", (void **)&libuv.timer_start},
      {"uv_timer_stop", (void **)&libuv.timer_stop},
      {"uv_close", (void **)&libuv.close},
      {"uv_ref", (void **)&libuv.ref},
      {"uv_unref", (void **)&libuv.unref},
      {"uv_update_time", (void **)&libuv.update_time},
      {"napi_get_uv_event_loop", (void **)&libuv.get_uv_event_loop},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    *table[i].slot = dlsym(RTLD_DEFAULT, table[i].name);
    if (*table[i].slot == NULL && libuv_missing == NULL) libuv_missing = table[i].name;
  }
}

struct ioloop_guest {
  ioloop_state *st;
  napi_env env;
  uv_loop_t *loop;
  uv_poll_t poll;
  uv_timer_t timer;
  napi_ref self; /* weak while stopped, strong while started */
  napi_ref turn; /* weak: onTurn, which the object itself holds */
  napi_async_context async_context;
  int fd;
  bool closed;
  bool started;
  bool fd_gone; /* close() closed the fd this guest watched */
  bool wrapped; /* the wrapper's finalizer has not run yet */
  int handles_open;
  ioloop_guest *prev, *next;
};

static void on_poll(uv_poll_t *h, int status, int events);

/* Marks our wrapped objects, so that an object wrapped by another addon is
 * never taken for a guest. */
static const napi_type_tag guest_tag = {0x8d3b0f6a2c4e4b71ULL, 0xa5c19e7d03f26b58ULL};

static void guest_maybe_free(ioloop_guest *g) {
  if (g->closed && !g->wrapped && g->handles_open == 0) free(g);
}

static void on_handle_closed(uv_handle_t *h) {
  ioloop_guest *g = h->data;
  ioloop_state *st = g->st;
  if (--g->handles_open == 0 && g->async_context != NULL) {
    napi_async_destroy(g->env, g->async_context);
    g->async_context = NULL;
  }
  guest_maybe_free(g);
  ioloop_handle_closed(st);
}

static void guest_unlink(ioloop_guest *g) {
  if (g->prev != NULL)
    g->prev->next = g->next;
  else if (g->st->guests == g)
    g->st->guests = g->next;
  if (g->next != NULL) g->next->prev = g->prev;
  g->prev = g->next = NULL;
}

/* Stopping or closing any uv_poll_t makes libuv take its fd out of the loop's
 * epoll set (uv__platform_invalidate_fd), even when another poll handle still
 * watches that fd, and libuv does not put it back on its own. So after `g`
 * stops or closes, the started guest on the same fd (at most one, see
 * guestStart) is restarted, which registers the fd again. */
static void rearm_peer(ioloop_state *st, const ioloop_guest *g) {
  for (ioloop_guest *other = st->guests; other != NULL; other = other->next) {
    if (other != g && other->started && other->fd == g->fd && !other->fd_gone) {
      libuv.poll_stop(&other->poll);
      libuv.poll_start(&other->poll, UV_READABLE, on_poll);
    }
  }
}

/* Close both handles and drop the object reference. Idempotent. */
static void guest_close(ioloop_guest *g) {
  if (g->closed) return;
  g->closed = true;
  g->started = false;
  guest_unlink(g);
  if (g->self != NULL) {
    napi_delete_reference(g->env, g->self);
    g->self = NULL;
  }
  if (g->turn != NULL) {
    napi_delete_reference(g->env, g->turn);
    g->turn = NULL;
  }
  g->handles_open = 2;
  g->st->closing_handles += 2;
  libuv.close((uv_handle_t *)&g->poll, on_handle_closed);
  libuv.close((uv_handle_t *)&g->timer, on_handle_closed);
  rearm_peer(g->st, g);
}

static void guest_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  ioloop_guest *g = data;
  guest_close(g);
  g->wrapped = false;
  guest_maybe_free(g);
}

static void guest_turn(ioloop_guest *g, int reason) {
  napi_env env = g->env;
  napi_handle_scope scope;
  if (g->closed || napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value self = NULL, fn, arg, result;
  /* onTurn through a weak reference rather than a property lookup: a lookup by
   * name costs more than the rest of this function on every turn. */
  fn = NULL;
  if (napi_get_reference_value(env, g->self, &self) == napi_ok && self != NULL &&
      napi_get_reference_value(env, g->turn, &fn) == napi_ok && fn != NULL &&
      napi_create_int32(env, reason, &arg) == napi_ok) {
    napi_status s = napi_make_callback(env, g->async_context, self, fn, 1, &arg, &result);
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

static void on_poll(uv_poll_t *h, int status, int events) {
  (void)events;
  guest_turn(h->data, status < 0 ? status : IOLOOP_TURN_IO);
}

static void on_timer(uv_timer_t *h) { guest_turn(h->data, IOLOOP_TURN_TIMER); }

/* The guest behind argument `v`, or NULL with a TypeError/Error thrown. A
 * closed guest is an Error unless allow_closed. */
static ioloop_guest *arg_guest(napi_env env, napi_value v, const char *fn,
                               bool allow_closed) {
  ioloop_guest *g = ioloop_arg_wrapped(env, v, &guest_tag, fn, "g", "an object returned by guestOpen");
  if (g == NULL) return NULL;
  if (g->closed && !allow_closed) {
    ioloop_throw(env, false, "ERR_GUEST_CLOSED", "%s: guest driver is closed", fn);
    return NULL;
  }
  return g;
}

/* guestOpen(epfd, onTurn): a stopped, unreferenced guest driver. */
static napi_value guest_open_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "guestOpen";
  napi_value argv[2];
  void *data = NULL;
  if (!ioloop_args(env, info, 2, argv, &data)) return NULL;
  ioloop_state *st = data;
  int epfd;
  if (!ioloop_arg_fd(env, argv[0], fn, "epfd", &epfd)) return NULL;
  if (!ioloop_arg_function(env, argv[1], fn, "onTurn")) return NULL;

  pthread_once(&libuv_once, libuv_resolve);
  if (libuv_missing != NULL) {
    ioloop_throw(env, false, "ENOSYS",
                 "%s: this host does not provide %s (the guest driver runs on the "
                 "host's libuv loop; use the watcher driver)",
                 fn, libuv_missing);
    return NULL;
  }
  uv_loop_t *loop = NULL;
  if (libuv.get_uv_event_loop(env, &loop) != napi_ok || loop == NULL) {
    ioloop_throw(env, false, NULL, "%s: no libuv loop in this environment", fn);
    return NULL;
  }
  if (!ioloop_need_async_cleanup(env, st)) return NULL;
  napi_value obj, name;
  napi_property_descriptor prop = {"onTurn", NULL, NULL, NULL, NULL, argv[1],
                                   napi_default, NULL};
  if (napi_create_object(env, &obj) != napi_ok ||
      napi_define_properties(env, obj, 1, &prop) != napi_ok ||
      napi_create_string_utf8(env, "wasm_ioloop.guest", NAPI_AUTO_LENGTH, &name) !=
          napi_ok) {
    ioloop_throw(env, false, NULL, "%s: cannot create the guest object", fn);
    return NULL;
  }

  ioloop_guest *g = calloc(1, sizeof *g);
  if (g == NULL) {
    ioloop_throw(env, false, "ENOMEM", "%s: out of memory", fn);
    return NULL;
  }
  g->st = st;
  g->env = env;
  g->fd = epfd;
  g->loop = loop;
  int r = libuv.poll_init(loop, &g->poll, epfd);
  if (r != 0) {
    free(g);
    /* libuv's error numbers are -errno on Unix. */
    ioloop_throw_errno(env, -r, "%s: cannot watch epfd %d", fn, epfd);
    return NULL;
  }
  libuv.timer_init(loop, &g->timer);
  g->poll.data = g;
  g->timer.data = g;
  libuv.unref((uv_handle_t *)&g->poll);
  libuv.unref((uv_handle_t *)&g->timer);
  /* From here on the handles exist, so failures go through guest_close. */
  g->next = st->guests;
  if (g->next != NULL) g->next->prev = g;
  st->guests = g;

  if (napi_async_init(env, NULL, name, &g->async_context) != napi_ok ||
      napi_type_tag_object(env, obj, &guest_tag) != napi_ok ||
      napi_wrap(env, obj, g, guest_finalize, NULL, NULL) != napi_ok) {
    guest_close(g);
    ioloop_throw(env, false, NULL, "%s: cannot wrap the guest object", fn);
    return NULL;
  }
  g->wrapped = true;
  if (napi_create_reference(env, obj, 0, &g->self) != napi_ok ||
      napi_create_reference(env, argv[1], 0, &g->turn) != napi_ok) {
    guest_close(g); /* the finalizer frees it */
    ioloop_throw(env, false, NULL, "%s: cannot reference the guest object", fn);
    return NULL;
  }
  return obj;
}

/* guestStart(g): watch the epoll fd; a started guest keeps Node alive. */
static napi_value guest_start_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "guestStart";
  napi_value argv[1];
  if (!ioloop_args(env, info, 1, argv, NULL)) return NULL;
  ioloop_guest *g = arg_guest(env, argv[0], fn, false);
  if (g == NULL) return NULL;
  if (g->started) return ioloop_undefined(env);
  if (g->fd_gone || fcntl(g->fd, F_GETFD) < 0) {
    ioloop_throw(env, false, "EBADF", "%s: epfd %d is closed", fn, g->fd);
    return NULL;
  }
  /* libuv delivers an fd's events to one watcher only: a second started
   * guest on the same fd would never turn. */
  for (ioloop_guest *other = g->st->guests; other != NULL; other = other->next) {
    if (other != g && other->started && other->fd == g->fd) {
      ioloop_throw(env, false, "EEXIST", "%s: another started guest already watches epfd %d",
                   fn, g->fd);
      return NULL;
    }
  }
  int r = libuv.poll_start(&g->poll, UV_READABLE, on_poll);
  if (r != 0) {
    ioloop_throw_errno(env, -r, "%s: uv_poll_start failed", fn);
    return NULL;
  }
  if (napi_reference_ref(env, g->self, NULL) != napi_ok) {
    libuv.poll_stop(&g->poll);
    return NULL;
  }
  libuv.ref((uv_handle_t *)&g->poll);
  libuv.ref((uv_handle_t *)&g->timer);
  g->started = true;
  return ioloop_undefined(env);
}

/* guestArm(g, timeoutMs): (re)start the timer; < 0 stops it. */
static napi_value guest_arm_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "guestArm";
  napi_value argv[2];
  if (!ioloop_args(env, info, 2, argv, NULL)) return NULL;
  ioloop_guest *g = arg_guest(env, argv[0], fn, false);
  if (g == NULL) return NULL;
  double ms;
  if (!ioloop_arg_number(env, argv[1], fn, "timeoutMs", "a number (< 0 stops the timer)",
                         &ms))
    return NULL;
  if (ms < 0 || isinf(ms)) {
    libuv.timer_stop(&g->timer);
  } else {
    /* The loop's cached time is from the start of this iteration; without the
     * update a deadline measured from now would fire early. Rounded up so the
     * timer never fires before the core's deadline. */
    libuv.update_time(g->loop);
    /* Beyond 2**53 ms (285,000 years) is forever in practice; the clamp keeps
     * the conversion defined. */
    uint64_t timeout = ms > 9007199254740992.0 ? UINT64_C(9007199254740992) : (uint64_t)ceil(ms);
    libuv.timer_start(&g->timer, on_timer, timeout, 0);
  }
  return ioloop_undefined(env);
}

static void guest_stop(ioloop_guest *g) {
  libuv.timer_stop(&g->timer);
  libuv.unref((uv_handle_t *)&g->poll);
  libuv.unref((uv_handle_t *)&g->timer);
  if (!g->started) return;
  /* Only a started poll is stopped: stopping an idle one would still take the
   * fd out of libuv's epoll set (see rearm_peer). */
  libuv.poll_stop(&g->poll);
  if (g->self != NULL) napi_reference_unref(g->env, g->self, NULL);
  g->started = false;
  rearm_peer(g->st, g);
}

/* guestStop(g): stop watching and the timer; a stopped guest never keeps Node
 * alive. Idempotent. */
static napi_value guest_stop_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!ioloop_args(env, info, 1, argv, NULL)) return NULL;
  ioloop_guest *g = arg_guest(env, argv[0], "guestStop", false);
  if (g == NULL) return NULL;
  guest_stop(g);
  return ioloop_undefined(env);
}

/* guestClose(g): close both handles. Idempotent. */
static napi_value guest_close_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!ioloop_args(env, info, 1, argv, NULL)) return NULL;
  ioloop_guest *g = arg_guest(env, argv[0], "guestClose", true);
  if (g == NULL) return NULL;
  guest_close(g);
  return ioloop_undefined(env);
}

void ioloop_guest_close_all(ioloop_state *st) {
  while (st->guests != NULL) guest_close(st->guests);
}

void ioloop_guest_forget_fd(ioloop_state *st, int fd) {
  for (ioloop_guest *g = st->guests; g != NULL; g = g->next)
    if (g->fd == fd) g->fd_gone = true;
  for (ioloop_guest *g = st->guests; g != NULL; g = g->next)
    if (g->fd == fd) guest_stop(g);
}

const ioloop_export ioloop_guest_exports[] = {
    {"guestOpen", guest_open_js},
    {"guestStart", guest_start_js},
    {"guestArm", guest_arm_js},
    {"guestStop", guest_stop_js},
    {"guestClose", guest_close_js},
    {NULL, NULL},
};
