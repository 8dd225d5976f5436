/* The poll(2) poller: the epoll poller's contract on top of a table of
 * pollfds, for hosts and callers that want no epoll instance.
 *
 * Contract (the same as poller.c's epoll functions, so the runtime can swap
 * one for the other):
 *   - pollCreate() makes a set and returns its identity: an eventfd the set
 *     owns (recorded in owned.c like any eventfd the shim makes). close() on
 *     that number frees the set; environment teardown frees the rest.
 *   - pollCtl(pfd, op, fd, events, token) takes the same ops, bits and tokens
 *     as epollCtl and fails with the same errnos: EBADF for a closed pfd or fd,
 *     EINVAL for a pfd that is not a set (or fd == pfd), EEXIST, ENOENT.
 *     poll(2) watches regular files too (always ready), so EPERM never occurs.
 *   - pollWait(pfd, buffer, byteOffset, maxEvents, timeoutMs) writes the same
 *     (u32 token, u32 events) records, at most IOLOOP_WAIT_MAX per call, with
 *     the same timeout rounding and EINTR resumption. Level-triggered (poll(2)
 *     is); a record carries only the registered interest plus the error and
 *     hang-up bits, which are reported whether asked for or not. The EV_* bits
 *     are the POLL* bits (checked below), so nothing is translated.
 *   - The set's own eventfd is polled by every wait on the set but never
 *     reported: a wake(pfd) from any thread makes a pollWait in progress
 *     return early (perhaps with 0 records) and makes a watcher waiting on the
 *     set turn. Whoever sees it readable drains it.
 *   - A descriptor closed while registered: epoll forgets it when it is
 *     closed, so its events are dropped and nothing spins. The same holds
 *     here: close() through the shim takes the fd out of every set of its
 *     environment, and a descriptor closed any other way (which poll(2)
 *     reports as POLLNVAL) is dropped silently from the set by the next
 *     pollWait that sees it. Its handler hears nothing, exactly as with
 *     epoll. (Unlike epoll, a number reused before that pollWait would be
 *     watched under the old token: the set knows descriptors by number.)
 *
 * Table (the layout libuv's posix-poll backend also uses: a dense array and a
 * map from fd to position):
 *   - pfds[0] is the set's eventfd; pfds[1..len] are the registrations, dense,
 *     with tokens[i] beside pfds[i]. slot[fd] is fd's index in pfds, or 0 when
 *     fd is not registered (0 is never a registration). Removal moves the last
 *     registration into the hole, so the array stays dense and poll(2) gets it
 *     as it is, with no copy.
 *   - Fairness: when more descriptors are ready than maxEvents allows, the
 *     next pollWait starts reading where this one stopped (a rotating cursor),
 *     so a busy descriptor early in the array cannot starve later ones.
 *   - Updates during a wait: pollWait reads the results in C without calling
 *     JavaScript, so no registration can change between poll(2) returning
 *     and the records being written; descriptors found closed are removed after
 *     the records are written.
 *
 * Threads: the set belongs to the environment that made it; only that
 * environment's thread calls pollCtl, pollWait and close on it, and only it
 * changes the table. A watcher thread (watcher.c) reads the table through
 * ioloop_pollset_snapshot. So every change is made under `lock` and bumps
 * `gen`; the loop thread reads the table without the lock (no one else writes
 * it); and after each change the set writes to the eventfd of every listener
 * that may be inside poll(2) on an older copy, so it picks up the new one.
 * poll(2) in pollWait writes only the revents fields, which snapshots never
 * read.
 */
#define _GNU_SOURCE
#include "addon.h"
#include "layout.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

_Static_assert(IOLOOP_EV_READ == POLLIN, "EV_READ must equal POLLIN");
_Static_assert(IOLOOP_EV_WRITE == POLLOUT, "EV_WRITE must equal POLLOUT");
_Static_assert(IOLOOP_EV_ERROR == (POLLERR | POLLHUP), "EV_ERROR must equal POLLERR | POLLHUP");

/* The interest poll(2) is asked for; errors and hang-ups come regardless. */
#define POLL_INTEREST (POLLIN | POLLOUT)

struct ioloop_pollset {
  ioloop_state *st;
  int efd;
  pthread_mutex_t lock;
  struct pollfd *pfds; /* cap + 1 entries; [0] is efd */
  uint32_t *tokens;    /* cap + 1 entries, beside pfds */
  uint32_t len, cap;   /* registrations in use and room for them */
  uint32_t *slot;      /* slots entries: fd -> index in pfds, 0 for none */
  uint32_t slots;
  uint32_t cursor; /* where the next harvest starts, in [0, len) */
  uint64_t gen;    /* bumped by every change */
  ioloop_set_listener *listeners;
  ioloop_pollset *next;
};

static int make_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

static void drain_eventfd(int fd) {
  uint64_t value;
  ssize_t r;
  do {
    r = read(fd, &value, sizeof value);
  } while (r < 0 && errno == EINTR);
}

ioloop_pollset *ioloop_pollset_find(ioloop_state *st, int fd) {
  for (ioloop_pollset *set = st->pollsets; set != NULL; set = set->next)
    if (set->efd == fd) return set;
  return NULL;
}

int ioloop_pollset_not_a_set(int fd) { return fcntl(fd, F_GETFD) < 0 ? EBADF : EINVAL; }

/* Call with the lock held, after changing the table. */
static void changed_locked(ioloop_pollset *set) {
  set->gen++;
  static const uint64_t one = 1;
  for (ioloop_set_listener *l = set->listeners; l != NULL; l = l->next) {
    if (atomic_load(&l->polling)) {
      ssize_t r;
      do {
        r = write(l->efd, &one, sizeof one);
      } while (r < 0 && errno == EINTR);
    }
  }
}

void ioloop_pollset_listen(ioloop_pollset *set, ioloop_set_listener *l) {
  pthread_mutex_lock(&set->lock);
  l->next = set->listeners;
  set->listeners = l;
  pthread_mutex_unlock(&set->lock);
}

void ioloop_pollset_unlisten(ioloop_pollset *set, ioloop_set_listener *l) {
  pthread_mutex_lock(&set->lock);
  for (ioloop_set_listener **p = &set->listeners; *p != NULL; p = &(*p)->next) {
    if (*p == l) {
      *p = l->next;
      break;
    }
  }
  l->next = NULL;
  pthread_mutex_unlock(&set->lock);
}

int ioloop_pollset_snapshot(ioloop_pollset *set, struct pollfd **buf, size_t *cap,
                            size_t at, uint64_t *gen) {
  pthread_mutex_lock(&set->lock);
  size_t n = (size_t)set->len + 1;
  if (*gen != set->gen) {
    if (at + n > *cap) {
      size_t want = (at + n) * 2;
      struct pollfd *grown = realloc(*buf, want * sizeof *grown);
      if (grown == NULL) {
        pthread_mutex_unlock(&set->lock);
        return -ENOMEM;
      }
      *buf = grown;
      *cap = want;
    }
    /* fd and events only: revents may be being written by a pollWait on the
     * loop thread. */
    for (size_t i = 0; i < n; i++) {
      (*buf)[at + i].fd = set->pfds[i].fd;
      (*buf)[at + i].events = set->pfds[i].events;
      (*buf)[at + i].revents = 0;
    }
    *gen = set->gen;
  }
  pthread_mutex_unlock(&set->lock);
  return (int)n;
}

/* Room for one more registration and for slot[fd]; false if out of memory.
 * Lock held. */
static bool reserve_locked(ioloop_pollset *set, int fd) {
  if ((uint32_t)fd >= set->slots) {
    uint64_t want = (uint64_t)set->slots * 2;
    if (want < (uint64_t)fd + 1) want = (uint64_t)fd + 1;
    if (want < 64) want = 64;
    uint32_t *grown = realloc(set->slot, want * sizeof *grown);
    if (grown == NULL) return false;
    memset(grown + set->slots, 0, (want - set->slots) * sizeof *grown);
    set->slot = grown;
    set->slots = (uint32_t)want;
  }
  if (set->len == set->cap) {
    uint32_t want = set->cap * 2;
    struct pollfd *p = realloc(set->pfds, ((size_t)want + 1) * sizeof *p);
    if (p == NULL) return false;
    set->pfds = p;
    uint32_t *t = realloc(set->tokens, ((size_t)want + 1) * sizeof *t);
    if (t == NULL) return false; /* pfds merely has spare room now */
    set->tokens = t;
    set->cap = want;
  }
  return true;
}

/* Take pfds[i] (a registration) out, moving the last one into its place.
 * Lock held; the caller reports the change. */
static void remove_at_locked(ioloop_pollset *set, uint32_t i) {
  int fd = set->pfds[i].fd;
  uint32_t last = set->len;
  if (i != last) {
    set->pfds[i] = set->pfds[last];
    set->tokens[i] = set->tokens[last];
    set->slot[set->pfds[i].fd] = i;
  }
  set->slot[fd] = 0;
  set->len--;
  if (set->cursor >= set->len) set->cursor = 0;
}

static uint32_t slot_of(const ioloop_pollset *set, int fd) {
  return (uint32_t)fd < set->slots ? set->slot[fd] : 0;
}

/* pollCreate(): the set's fd or -errno. */
static napi_value poll_create_js(napi_env env, napi_callback_info info) {
  void *data = NULL;
  if (!ioloop_args(env, info, 0, NULL, &data)) return NULL;
  ioloop_state *st = data;
  ioloop_pollset *set = calloc(1, sizeof *set);
  if (set == NULL) return ioloop_int(env, -ENOMEM);
  set->cap = 8;
  set->pfds = malloc((set->cap + 1) * sizeof *set->pfds);
  set->tokens = malloc((set->cap + 1) * sizeof *set->tokens);
  if (set->pfds == NULL || set->tokens == NULL) {
    free(set->pfds);
    free(set->tokens);
    free(set);
    return ioloop_int(env, -ENOMEM);
  }
  int efd = ioloop_create_owned(st, make_eventfd);
  if (efd < 0) {
    free(set->pfds);
    free(set->tokens);
    free(set);
    return ioloop_int(env, efd);
  }
  pthread_mutex_init(&set->lock, NULL);
  set->st = st;
  set->efd = efd;
  /* Listeners start with generation 0, which therefore never names a copy. */
  set->gen = 1;
  set->pfds[0].fd = efd;
  set->pfds[0].events = POLLIN;
  set->pfds[0].revents = 0;
  set->tokens[0] = 0;
  set->next = st->pollsets;
  st->pollsets = set;
  return ioloop_int(env, efd);
}

static int set_ctl(ioloop_pollset *set, int op, int fd, uint32_t events, uint32_t token) {
  /* Checked in epoll_ctl's order: descriptors first, then membership. */
  bool open = fcntl(fd, F_GETFD) >= 0;
  uint32_t i = slot_of(set, fd);
  if (!open) {
    /* A registration left by a descriptor closed behind the shim's back goes
     * now rather than at the next pollWait; the answer is still EBADF, as
     * epoll_ctl gives for a closed fd. */
    if (op == IOLOOP_CTL_DEL && i != 0) {
      pthread_mutex_lock(&set->lock);
      remove_at_locked(set, i);
      changed_locked(set);
      pthread_mutex_unlock(&set->lock);
    }
    return -EBADF;
  }
  if (fd == set->efd) return -EINVAL;
  int r = 0;
  pthread_mutex_lock(&set->lock);
  switch (op) {
    case IOLOOP_CTL_ADD:
      if (i != 0) {
        r = -EEXIST;
      } else if (!reserve_locked(set, fd)) {
        r = -ENOMEM;
      } else {
        i = ++set->len;
        set->pfds[i].fd = fd;
        set->pfds[i].events = (short)(events & POLL_INTEREST);
        set->pfds[i].revents = 0;
        set->tokens[i] = token;
        set->slot[fd] = i;
      }
      break;
    case IOLOOP_CTL_MOD:
      if (i == 0) {
        r = -ENOENT;
      } else {
        set->pfds[i].events = (short)(events & POLL_INTEREST);
        set->tokens[i] = token;
      }
      break;
    default: /* IOLOOP_CTL_DEL */
      if (i == 0)
        r = -ENOENT;
      else
        remove_at_locked(set, i);
      break;
  }
  if (r == 0) changed_locked(set);
  pthread_mutex_unlock(&set->lock);
  return r;
}

/* pollCtl(pfd, op, fd, events, token): 0 or -errno. For CTL_DEL, events and
 * token are ignored and may be omitted. */
static napi_value poll_ctl_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "pollCtl";
  napi_value argv[5];
  void *data = NULL;
  if (!ioloop_args(env, info, 5, argv, &data)) return NULL;
  int pfd, op, fd;
  uint32_t events, token;
  if (!ioloop_arg_fd(env, argv[0], fn, "pfd", &pfd)) return NULL;
  if (!ioloop_arg_ctl(env, argv + 1, fn, &op, &fd, &events, &token)) return NULL;
  ioloop_pollset *set = ioloop_pollset_find(data, pfd);
  if (set == NULL) return ioloop_int(env, -ioloop_pollset_not_a_set(pfd));
  return ioloop_int(env, set_ctl(set, op, fd, events, token));
}

/* Write the records of one poll(2) result `ready` (its return value). Returns
 * the number written; *dead says whether a closed descriptor was seen. */
static int harvest(ioloop_pollset *set, int ready, const ioloop_wait_args *w, bool *dead) {
  const uint32_t len = set->len;
  int count = 0;
  uint32_t k = 0, last = 0;
  for (; k < len && ready > 0 && count < w->max; k++) {
    uint32_t i = set->cursor + k;
    if (i >= len) i -= len;
    i++; /* past the eventfd */
    short rev = set->pfds[i].revents;
    if (rev == 0) continue;
    ready--;
    if (rev & POLLNVAL) {
      *dead = true;
      continue;
    }
    uint32_t ev = (uint32_t)rev & ((uint32_t)set->pfds[i].events | POLLERR | POLLHUP);
    if (ev == 0) continue;
    ioloop_put_record(w->out + (size_t)count * IOLOOP_EVENT_SIZE, set->tokens[i], ev);
    count++;
    last = k;
  }
  /* Stopped by maxEvents with more left: start after the last one reported. */
  if (count == w->max && ready > 0 && len > 0) set->cursor = (set->cursor + last + 1) % len;
  return count;
}

/* pollWait(pfd, buffer, byteOffset, maxEvents, timeoutMs): count or -errno. */
static napi_value poll_wait_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "pollWait";
  napi_value argv[5];
  void *data = NULL;
  if (!ioloop_args(env, info, 5, argv, &data)) return NULL;
  int pfd;
  ioloop_wait_args w;
  if (!ioloop_arg_fd(env, argv[0], fn, "pfd", &pfd)) return NULL;
  if (!ioloop_arg_wait(env, argv + 1, fn, &w)) return NULL;
  ioloop_pollset *set = ioloop_pollset_find(data, pfd);
  if (set == NULL) return ioloop_int(env, -ioloop_pollset_not_a_set(pfd));

  struct timespec start;
  if (w.timeout_ms > 0) clock_gettime(CLOCK_MONOTONIC, &start);
  int timeout = w.timeout_ms;
  int n;
  for (;;) {
    n = poll(set->pfds, (nfds_t)set->len + 1, timeout);
    if (n >= 0 || errno != EINTR) break;
    if (w.timeout_ms > 0) {
      timeout = ioloop_ms_left(w.timeout_ms, &start);
      if (timeout == 0) {
        n = 0;
        break;
      }
    }
  }
  if (n < 0) return ioloop_int(env, -errno);
  if (n == 0) return ioloop_int(env, 0);

  short own = set->pfds[0].revents;
  if (own != 0) {
    /* The set's own eventfd closed behind the shim's back: the set is broken. */
    if (own & POLLNVAL) return ioloop_int(env, -EBADF);
    drain_eventfd(set->efd);
    n--;
  }
  bool dead = false;
  int count = harvest(set, n, &w, &dead);
  if (dead) {
    /* From the end down, so that each entry moved into a hole has already been
     * looked at. */
    pthread_mutex_lock(&set->lock);
    for (uint32_t i = set->len; i >= 1; i--)
      if (set->pfds[i].revents & POLLNVAL) remove_at_locked(set, i);
    changed_locked(set);
    pthread_mutex_unlock(&set->lock);
  }
  return ioloop_int(env, count);
}

static void unlink_set(ioloop_pollset *set) {
  for (ioloop_pollset **p = &set->st->pollsets; *p != NULL; p = &(*p)->next) {
    if (*p == set) {
      *p = set->next;
      return;
    }
  }
}

static int free_set(ioloop_pollset *set) {
  unlink_set(set);
  int r = ioloop_close_fd(set->efd);
  pthread_mutex_destroy(&set->lock);
  free(set->pfds);
  free(set->tokens);
  free(set->slot);
  free(set);
  return r;
}

bool ioloop_pollset_close(ioloop_state *st, int fd, int *result) {
  ioloop_pollset *set = ioloop_pollset_find(st, fd);
  if (set == NULL) return false;
  *result = free_set(set);
  return true;
}

void ioloop_pollset_forget_fd(ioloop_state *st, int fd) {
  for (ioloop_pollset *set = st->pollsets; set != NULL; set = set->next) {
    uint32_t i = slot_of(set, fd);
    if (i == 0) continue;
    pthread_mutex_lock(&set->lock);
    remove_at_locked(set, i);
    changed_locked(set);
    pthread_mutex_unlock(&set->lock);
  }
}

void ioloop_pollset_close_all(ioloop_state *st) {
  while (st->pollsets != NULL) free_set(st->pollsets);
}

const ioloop_export ioloop_pollset_exports[] = {
    {"pollCreate", poll_create_js},
    {"pollCtl", poll_ctl_js},
    {"pollWait", poll_wait_js},
    {NULL, NULL},
};
