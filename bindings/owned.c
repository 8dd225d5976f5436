/* The process-wide table of descriptors that environments own.
 *
 * epollCreate and eventfdOpen record the fd they make together with the
 * environment that made it; close() forgets it; the environment's cleanup
 * closes what is left. The table is process-wide (not per environment) so that
 * close() from any thread forgets the entry: otherwise a number closed on one
 * thread and handed out again on another could be closed twice.
 *
 * Creation, recording, closing and forgetting happen under one mutex, so the
 * table never holds a number that now belongs to someone else, as long as owned
 * descriptors are closed only through close(). The table is small (a few
 * descriptors per loop) and touched only when loops open and close, so a
 * linear scan is enough.
 */
#define _GNU_SOURCE
#include "addon.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
  int fd;
  ioloop_state *owner;
} owned_fd;

static pthread_mutex_t owned_lock = PTHREAD_MUTEX_INITIALIZER;
static owned_fd *owned;
static size_t owned_len, owned_cap;

static void forget_locked(int fd) {
  for (size_t i = 0; i < owned_len; i++) {
    if (owned[i].fd == fd) {
      owned[i] = owned[--owned_len];
      return;
    }
  }
}

/* close(2) that treats EINTR as done: on Linux the descriptor is released
 * before close returns EINTR, and retrying could close a reused number. */
static int close_errno(int fd) {
  if (close(fd) == 0 || errno == EINTR) return 0;
  return -errno;
}

int ioloop_create_owned(ioloop_state *st, int (*create)(void)) {
  pthread_mutex_lock(&owned_lock);
  int fd = create();
  if (fd < 0) {
    fd = -errno;
  } else {
    if (owned_len == owned_cap) {
      size_t cap = owned_cap ? owned_cap * 2 : 16;
      owned_fd *grown = realloc(owned, cap * sizeof *grown);
      if (grown == NULL) {
        close(fd);
        pthread_mutex_unlock(&owned_lock);
        return -ENOMEM;
      }
      owned = grown;
      owned_cap = cap;
    }
    owned[owned_len].fd = fd;
    owned[owned_len].owner = st;
    owned_len++;
  }
  pthread_mutex_unlock(&owned_lock);
  return fd;
}

int ioloop_close_fd(int fd) {
  pthread_mutex_lock(&owned_lock);
  forget_locked(fd);
  int r = close_errno(fd);
  pthread_mutex_unlock(&owned_lock);
  return r;
}

void ioloop_close_owned(ioloop_state *st) {
  pthread_mutex_lock(&owned_lock);
  size_t i = 0;
  while (i < owned_len) {
    if (owned[i].owner == st) {
      close_errno(owned[i].fd);
      owned[i] = owned[--owned_len];
    } else {
      i++;
    }
  }
  pthread_mutex_unlock(&owned_lock);
}
