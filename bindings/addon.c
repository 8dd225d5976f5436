/* Module init: per-environment state, cleanup, exports and the `layout` object.
 *
 * The module is initialised once per environment (the main thread and each
 * worker that loads it), each with its own ioloop_state.
 *
 * Cleanup comes in two parts (see addon.h). The plain hook, added here, closes
 * what needs no callback: watchers, poll sets, owned descriptors. The async
 * hook is added by the first guestOpen only, because closing libuv handles
 * completes in a callback: Node keeps the environment's loop running until the
 * hook reports that the last close callback ran, so no callback outlives the
 * state (a worker whose loop still has open handles at exit aborts the
 * process). Adding it only when a guest exists keeps it away from hosts that
 * have no libuv, whose async hooks need not behave like Node's: one host frees
 * the hook's handle itself after the hook returns, so the removal that Node
 * requires would free it twice.
 */
#define _GNU_SOURCE
#include "addon.h"
#include "layout.h"
#include "util.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/epoll.h>

/* Watchers first: their threads must be gone before the sets and descriptors
 * they poll are closed. Waker ids are retired before the eventfds they name. */
static void on_cleanup(void *arg) {
  ioloop_state *st = arg;
  /* Signal watches hold descriptors of their own; closing them gives back the
   * signal dispositions no other loop needs. */
  ioloop_signal_close_all(st);
  ioloop_watcher_close_all(st);
  ioloop_pollset_close_all(st);
  ioloop_wakers_retire_all(st);
  ioloop_close_owned(st);
}

static void on_async_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  ioloop_state *st = arg;
  ioloop_guest_close_all(st);
  if (st->closing_handles == 0) {
    st->cleanup_hook = NULL;
    napi_remove_async_cleanup_hook(handle);
  } else {
    st->cleanup_waiting = true; /* ioloop_handle_closed finishes it */
  }
}

void ioloop_handle_closed(ioloop_state *st) {
  if (--st->closing_handles == 0 && st->cleanup_waiting) {
    napi_async_cleanup_hook_handle handle = st->cleanup_hook;
    st->cleanup_waiting = false;
    st->cleanup_hook = NULL;
    napi_remove_async_cleanup_hook(handle);
  }
}

bool ioloop_need_async_cleanup(napi_env env, ioloop_state *st) {
  if (st->cleanup_added) return true;
  if (napi_add_async_cleanup_hook(env, on_async_cleanup, st, &st->cleanup_hook) != napi_ok) {
    ioloop_throw(env, false, NULL, "wasm_ioloop: napi_add_async_cleanup_hook failed");
    return false;
  }
  st->cleanup_added = true;
  return true;
}

/* Runs when the environment is torn down, after the cleanup hooks finished. */
static void free_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  ioloop_state *st = data;
  ioloop_wakers_retire_all(st);
  ioloop_close_owned(st);
  free(st);
}

static bool set_number(napi_env env, napi_value obj, const char *name, uint32_t x) {
  napi_value v;
  return napi_create_uint32(env, x, &v) == napi_ok &&
         napi_set_named_property(env, obj, name, v) == napi_ok;
}

/* The shared constants from layout.h, and the system's own values beside them
 * so a test can check the two against each other. Frozen. */
static napi_value make_layout(napi_env env) {
  const struct {
    const char *name;
    uint32_t value;
  } items[] = {
      {"EV_NONE", IOLOOP_EV_NONE},
      {"EV_READ", IOLOOP_EV_READ},
      {"EV_WRITE", IOLOOP_EV_WRITE},
      {"EV_ERROR", IOLOOP_EV_ERROR},
      {"EVENT_SIZE", IOLOOP_EVENT_SIZE},
      {"EVENT_TOKEN_OFFSET", IOLOOP_EVENT_TOKEN_OFFSET},
      {"EVENT_EVENTS_OFFSET", IOLOOP_EVENT_EVENTS_OFFSET},
      {"HANDLER_SLOT_BITS", IOLOOP_HANDLER_SLOT_BITS},
      {"WAKER_TOKEN", IOLOOP_WAKER_TOKEN},
      {"CTL_ADD", IOLOOP_CTL_ADD},
      {"CTL_DEL", IOLOOP_CTL_DEL},
      {"CTL_MOD", IOLOOP_CTL_MOD},
      {"TURN_IO", IOLOOP_TURN_IO},
      {"TURN_TIMER", IOLOOP_TURN_TIMER},
      {"READY_CAPACITY", IOLOOP_READY_CAPACITY},
      {"EPOLLIN", EPOLLIN},
      {"EPOLLOUT", EPOLLOUT},
      {"EPOLLERR", EPOLLERR},
      {"EPOLLHUP", EPOLLHUP},
      {"POLLIN", POLLIN},
      {"POLLOUT", POLLOUT},
      {"POLLERR", POLLERR},
      {"POLLHUP", POLLHUP},
      {"EPOLL_CTL_ADD", EPOLL_CTL_ADD},
      {"EPOLL_CTL_DEL", EPOLL_CTL_DEL},
      {"EPOLL_CTL_MOD", EPOLL_CTL_MOD},
  };
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok) return NULL;
  for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
    if (!set_number(env, obj, items[i].name, items[i].value)) return NULL;
  if (napi_object_freeze(env, obj) != napi_ok) return NULL;
  return obj;
}

static bool add_exports(napi_env env, napi_value exports, ioloop_state *st,
                        const ioloop_export *list) {
  for (; list->name != NULL; list++) {
    napi_value fn;
    if (napi_create_function(env, list->name, NAPI_AUTO_LENGTH, list->cb, st, &fn) !=
            napi_ok ||
        napi_set_named_property(env, exports, list->name, fn) != napi_ok)
      return false;
  }
  return true;
}

NAPI_MODULE_INIT() {
  ioloop_state *st = calloc(1, sizeof *st);
  if (st == NULL) {
    napi_throw_error(env, "ENOMEM", "wasm_ioloop: out of memory");
    return NULL;
  }
  st->env = env;
  if (napi_set_instance_data(env, st, free_state, NULL) != napi_ok) {
    free(st);
    ioloop_throw(env, false, NULL, "wasm_ioloop: napi_set_instance_data failed");
    return NULL;
  }
  /* From here on free_state owns st. */
  if (napi_add_env_cleanup_hook(env, on_cleanup, st) != napi_ok) {
    ioloop_throw(env, false, NULL, "wasm_ioloop: napi_add_env_cleanup_hook failed");
    return NULL;
  }
  napi_value layout = make_layout(env);
  if (layout == NULL || napi_set_named_property(env, exports, "layout", layout) != napi_ok ||
      !add_exports(env, exports, st, ioloop_poller_exports) ||
      !add_exports(env, exports, st, ioloop_guest_exports) ||
      !add_exports(env, exports, st, ioloop_sys_exports) ||
      !add_exports(env, exports, st, ioloop_pollset_exports) ||
      !add_exports(env, exports, st, ioloop_watcher_exports) ||
      !add_exports(env, exports, st, ioloop_signal_exports) ||
      !add_exports(env, exports, st, ioloop_wakers_exports)) {
    ioloop_throw(env, false, NULL, "wasm_ioloop: cannot build the exports");
    return NULL;
  }
  return exports;
}
