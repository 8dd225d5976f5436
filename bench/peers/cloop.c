/*
 * cloop: a C event loop over epoll with an array heap of timers, and the
 * benchmark scenarios W1-W5 run on it. It marks the practical limit of this
 * machine for the benchmarks; it is never shipped.
 *
 *   cloop w1 random|equal [n]   one-shot timers (W1 / W1e)
 *   cloop w2 churn [n]          schedule + remove churn (W2)
 *   cloop w3 chain|batch [n]    callbacks (W3)
 *   cloop w4 1pair|100pairs [n] ping-pong over socketpairs (W4)
 *   cloop w5 idle [ms]          idle window (W5)
 *   cloop w7 1conn|64conns [ms] HTTP keep-alive under wrk (W7, in chttp.c)
 *   cloop s1 1k|10k|100k|1M|4M [n]  n timers pending, run until all fire (S1)
 *   cloop s2 1k|10k|100k|1M|4M [n]  n timers pending, removed in a random order (S2)
 *   cloop prng [k]              first k outputs of the PRNG (cross-language check)
 *   cloop perm n [k]            first k entries of S2's removal order of n timers
 *
 * Without a configuration a scenario runs each of its configurations in turn.
 * Each prints one JSON line per configuration after checking its own result;
 * a failed check prints "CHECK FAILED ..." on stderr and exits with status 2.
 *
 * The loop, in the order of one iteration (as in the TypeScript loops):
 *   1. cache the clock (timers started during the iteration count from it, as
 *      in libuv);
 *   2. run the callbacks queued before the iteration began;
 *   3. run the timers due at the cached time, in (deadline, start order);
 *      timers started during this step wait for the next iteration;
 *   4. epoll_wait: 0 ms if callbacks are queued, else until the earliest
 *      deadline rounded up to whole ms (at most an hour);
 *   5. run the handlers of ready descriptors (level-triggered).
 * Timers live in a binary heap of (deadline, order, timer) entries; each timer
 * keeps its heap index,
 * so removal from the middle is O(log n) and nothing cancelled stays behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- PRNG: mulberry32, the same function as bench/lib/prng.ts and prng.py ---- */

#define SEED 0x2545F491u
#define EQUAL_DELAY_MS 50

static uint32_t mulberry32(uint32_t *state) {
  uint32_t z = (*state += 0x6D2B79F5u);
  z = (z ^ (z >> 15)) * (z | 1u);
  z ^= z + (z ^ (z >> 7)) * (z | 61u);
  return z ^ (z >> 14);
}

static int32_t *delays_ms(size_t n, const char *config) {
  int32_t *d = malloc(n * sizeof *d);
  uint32_t state = SEED;
  int equal = strcmp(config, "equal") == 0;
  if (d == NULL) abort();
  for (size_t i = 0; i < n; i++) d[i] = equal ? EQUAL_DELAY_MS : (int32_t)(((uint64_t)mulberry32(&state) * 1001) >> 32);
  return d;
}

/* ---- measurement ---- */

static uint64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

typedef struct {
  uint64_t wall0;
  double cpu0, wall_ms, cpu_ms;
  double epoch_start_ms, epoch_end_ms;
} span_t;

static void span_start(span_t *s) {
  s->epoch_start_ms = clock_ns(CLOCK_REALTIME) / 1e6;
  s->cpu0 = cpu_ms();
  s->wall0 = clock_ns(CLOCK_MONOTONIC);
}

static void span_stop(span_t *s) {
  s->wall_ms = (clock_ns(CLOCK_MONOTONIC) - s->wall0) / 1e6;
  s->cpu_ms = cpu_ms() - s->cpu0;
  s->epoch_end_ms = clock_ns(CLOCK_REALTIME) / 1e6;
}

/* Prints a result line; `extra` is more JSON fields, each starting with a comma, or "". */
static void emit(const char *scenario, const char *config, size_t n, const span_t *s, double ops, const char *extra) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"scenario\":\"%s\",\"peer\":\"cloop\",\"config\":\"%s\",\"n\":%zu,\"wallMs\":%.6g,\"cpuMs\":%.6g,"
         "\"nsPerOp\":%.6g%s,\"rssPeakMb\":%.6g}\n",
         scenario, config, n, s->wall_ms, s->cpu_ms, s->cpu_ms * 1e6 / ops, extra, ru.ru_maxrss / 1024.0);
  fflush(stdout);
}

static void fail(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
#include <stdarg.h>
static void fail(const char *what, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "CHECK FAILED %s: ", what);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(2);
}

/* ---- the loop ---- */

typedef struct loop loop_t;
typedef void (*callback_fn)(loop_t *loop, void *arg);

typedef struct ctimer {
  uint64_t deadline; /* ns on the loop's clock */
  uint64_t seq;      /* start order, for equal deadlines */
  size_t index;      /* position in the heap; NOT_QUEUED when not scheduled */
  callback_fn cb;
  void *arg;
} ctimer_t;

#define NOT_QUEUED SIZE_MAX

typedef struct io {
  int fd;
  void (*cb)(loop_t *loop, struct io *io, uint32_t events);
  void *data;
} io_t;

typedef struct {
  callback_fn fn;
  void *arg;
} queued_t;

/* A heap entry carries its timer's key, so that ordering the heap reads only
 * the heap array; the timer itself is touched only to record its position. */
typedef struct {
  uint64_t deadline;
  uint64_t seq;
  ctimer_t *timer;
} heap_entry_t;

struct loop {
  int epfd;
  int running;
  uint64_t now;
  uint64_t seq;
  heap_entry_t *heap;
  size_t heap_len, heap_cap;
  queued_t *ring; /* callbacks: a ring buffer, capacity a power of two */
  size_t ring_head, ring_len, ring_cap;
};

static void loop_init(loop_t *loop) {
  memset(loop, 0, sizeof *loop);
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (loop->epfd < 0) perror("epoll_create1"), exit(1);
  loop->now = clock_ns(CLOCK_MONOTONIC);
}

static void loop_close(loop_t *loop) {
  close(loop->epfd);
  free(loop->heap);
  free(loop->ring);
}

static int before(const heap_entry_t *a, const heap_entry_t *b) {
  return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_place(loop_t *loop, size_t i, heap_entry_t e) {
  loop->heap[i] = e;
  e.timer->index = i;
}

static void sift_up(loop_t *loop, size_t i, heap_entry_t e) {
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(&e, &loop->heap[parent])) break;
    heap_place(loop, i, loop->heap[parent]);
    i = parent;
  }
  heap_place(loop, i, e);
}

static void sift_down(loop_t *loop, size_t i, heap_entry_t e) {
  size_t n = loop->heap_len;
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && before(&loop->heap[child + 1], &loop->heap[child])) child++;
    if (!before(&loop->heap[child], &e)) break;
    heap_place(loop, i, loop->heap[child]);
    i = child;
  }
  heap_place(loop, i, e);
}

/* Schedules t to run delay_ns after the loop's cached time. */
static void timer_start(loop_t *loop, ctimer_t *t, uint64_t delay_ns, callback_fn cb, void *arg) {
  if (loop->heap_len == loop->heap_cap) {
    loop->heap_cap = loop->heap_cap ? loop->heap_cap * 2 : 1024;
    loop->heap = realloc(loop->heap, loop->heap_cap * sizeof *loop->heap);
    if (loop->heap == NULL) abort();
  }
  t->deadline = loop->now + delay_ns;
  t->seq = loop->seq++;
  t->cb = cb;
  t->arg = arg;
  sift_up(loop, loop->heap_len++, (heap_entry_t){t->deadline, t->seq, t});
}

/* Unschedules t; harmless if it is not scheduled. */
static void timer_stop(loop_t *loop, ctimer_t *t) {
  size_t i = t->index;
  if (i == NOT_QUEUED) return;
  t->index = NOT_QUEUED;
  heap_entry_t last = loop->heap[--loop->heap_len];
  if (last.timer == t) return;
  if (i > 0 && before(&last, &loop->heap[(i - 1) / 2])) sift_up(loop, i, last);
  else sift_down(loop, i, last);
}

static void add_callback(loop_t *loop, callback_fn fn, void *arg) {
  if (loop->ring_len == loop->ring_cap) {
    size_t cap = loop->ring_cap ? loop->ring_cap * 2 : 1024;
    queued_t *ring = malloc(cap * sizeof *ring);
    if (ring == NULL) abort();
    for (size_t i = 0; i < loop->ring_len; i++) ring[i] = loop->ring[(loop->ring_head + i) & (loop->ring_cap - 1)];
    free(loop->ring);
    loop->ring = ring;
    loop->ring_head = 0;
    loop->ring_cap = cap;
  }
  loop->ring[(loop->ring_head + loop->ring_len++) & (loop->ring_cap - 1)] = (queued_t){fn, arg};
}

static void add_handler(loop_t *loop, io_t *io) {
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = io};
  if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0) perror("epoll_ctl"), exit(1);
}

static void remove_handler(loop_t *loop, io_t *io) {
  epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
}

static void loop_stop(loop_t *loop) { loop->running = 0; }

static void loop_run(loop_t *loop) {
  struct epoll_event events[1024];
  loop->running = 1;
  while (loop->running) {
    loop->now = clock_ns(CLOCK_MONOTONIC);
    for (size_t k = loop->ring_len; k > 0; k--) {
      queued_t q = loop->ring[loop->ring_head];
      loop->ring_head = (loop->ring_head + 1) & (loop->ring_cap - 1);
      loop->ring_len--;
      q.fn(loop, q.arg);
    }
    /* Timers started from here on have seq >= first_new and wait a turn. */
    uint64_t first_new = loop->seq;
    while (loop->heap_len > 0 && loop->heap[0].deadline <= loop->now && loop->heap[0].seq < first_new) {
      ctimer_t *t = loop->heap[0].timer;
      timer_stop(loop, t);
      t->cb(loop, t->arg);
    }
    if (!loop->running) break;
    int timeout = 3600 * 1000;
    if (loop->ring_len > 0) {
      timeout = 0;
    } else if (loop->heap_len > 0) {
      uint64_t now = clock_ns(CLOCK_MONOTONIC), due = loop->heap[0].deadline;
      uint64_t ms = due > now ? (due - now + 999999) / 1000000 : 0;
      if (ms < (uint64_t)timeout) timeout = (int)ms;
    }
    int n = epoll_wait(loop->epfd, events, 1024, timeout);
    if (n < 0 && errno != EINTR) perror("epoll_wait"), exit(1);
    for (int i = 0; i < n; i++) {
      io_t *io = events[i].data.ptr;
      io->cb(loop, io, events[i].events);
    }
  }
}

/* ---- W1 / W1e: one-shot timers ---- */

#define SAMPLE_EVERY 1024

typedef struct {
  loop_t *loop;
  ctimer_t *timers;
  const int32_t *delays;
  size_t n, count;
  int32_t *fired;
  uint64_t *clock; /* loop time before timer k*SAMPLE_EVERY is started, and after the last */
  span_t span;
} w1_t;

static w1_t w1;

static void w1_fire(loop_t *loop, void *arg) {
  w1.fired[w1.count++] = (int32_t)(intptr_t)arg;
  if (w1.count == w1.n) {
    span_stop(&w1.span);
    loop_stop(loop);
  }
}

static void w1_kickoff(loop_t *loop, void *arg) {
  (void)arg;
  span_start(&w1.span);
  for (size_t i = 0; i < w1.n; i++) {
    if (i % SAMPLE_EVERY == 0) w1.clock[i / SAMPLE_EVERY] = loop->now;
    timer_start(loop, &w1.timers[i], (uint64_t)w1.delays[i] * 1000000u, w1_fire, (void *)(intptr_t)i);
  }
  w1.clock[(w1.n + SAMPLE_EVERY - 1) / SAMPLE_EVERY] = loop->now;
}

/* The check of bench/lib/checks.ts, on the loop's nanoseconds; delays are 0..max_delay ms. */
static void w1_check(const char *what, int32_t max_delay) {
  size_t n = w1.n;
  if (w1.count != n) fail(what, "%zu of %zu timers ran", w1.count, n);
  uint8_t *seen = calloc(n, 1);
  int64_t *last_of_delay = malloc(((size_t)max_delay + 1) * sizeof *last_of_delay);
  if (seen == NULL || last_of_delay == NULL) abort();
  for (int32_t d = 0; d <= max_delay; d++) last_of_delay[d] = -1;
  uint64_t max_lo = 0;
  for (size_t j = 0; j < n; j++) {
    int32_t i = w1.fired[j];
    if (i < 0 || (size_t)i >= n) fail(what, "run %zu reports timer %d, out of range", j, i);
    if (seen[i]) fail(what, "timer %d ran twice", i);
    seen[i] = 1;
    int32_t d = w1.delays[i];
    if (last_of_delay[d] > i) fail(what, "timer %d (%d ms) ran after timer %lld of the same delay, which was started later", i, d, (long long)last_of_delay[d]);
    last_of_delay[d] = i;
    uint64_t lo = w1.clock[i / SAMPLE_EVERY] + (uint64_t)d * 1000000u;
    uint64_t hi = w1.clock[i / SAMPLE_EVERY + 1] + (uint64_t)d * 1000000u;
    if (hi < max_lo) fail(what, "timer %d (%d ms) ran after a timer with a later deadline", i, d);
    if (lo > max_lo) max_lo = lo;
  }
  free(seen);
  free(last_of_delay);
}

static void run_w1(const char *config, size_t n) {
  loop_t loop;
  loop_init(&loop);
  memset(&w1, 0, sizeof w1);
  w1.loop = &loop;
  w1.n = n;
  w1.delays = delays_ms(n, config);
  w1.timers = calloc(n, sizeof *w1.timers);
  w1.fired = calloc(n, sizeof *w1.fired);
  w1.clock = calloc(n / SAMPLE_EVERY + 2, sizeof *w1.clock);
  add_callback(&loop, w1_kickoff, NULL);
  loop_run(&loop);
  char what[64];
  snprintf(what, sizeof what, "W1 %s cloop", config);
  w1_check(what, 1000);
  emit(strcmp(config, "equal") == 0 ? "W1e" : "W1", config, n, &w1.span, (double)n, "");
  loop_close(&loop);
  free((void *)w1.delays), free(w1.timers), free(w1.fired), free(w1.clock);
}

/* ---- S1 / S2: timers at scale (bench/lib/prng.ts has the same delays and order) ---- */

#define PERMUTATION_SEED 0x9E3779B9u

/* Delays uniform over 0..span ms, span = max(1, n / 1000): a thousand timers a ms at any n. */
static int32_t *spread_delays_ms(size_t n, int32_t *span_out) {
  int32_t span = n / 1000 > 1 ? (int32_t)(n / 1000) : 1;
  int32_t *d = malloc(n * sizeof *d);
  uint32_t state = SEED;
  if (d == NULL) abort();
  for (size_t i = 0; i < n; i++) d[i] = (int32_t)(((uint64_t)mulberry32(&state) * (uint64_t)(span + 1)) >> 32);
  *span_out = span;
  return d;
}

/* Fisher-Yates from the end with j = (u32 * (i + 1)) >> 32. */
static int32_t *permutation(size_t n) {
  int32_t *p = malloc(n * sizeof *p);
  uint32_t state = PERMUTATION_SEED;
  if (p == NULL) abort();
  for (size_t i = 0; i < n; i++) p[i] = (int32_t)i;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = (size_t)(((uint64_t)mulberry32(&state) * (uint64_t)(i + 1)) >> 32);
    int32_t t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/* Rounds at n pending, as bench/lib/measure.ts's scalingRounds: about BENCH_SCALING_OPS
 * timers in all (default a million), every round but the first measured unless only one. */
static void scaling_rounds(size_t n, size_t *total, size_t *measured) {
  const char *env = getenv("BENCH_SCALING_OPS");
  double ops = env != NULL ? atof(env) : 1e6;
  size_t t = (size_t)(ops / n);
  if ((double)t * n < ops) t++;
  if (t < 1) t = 1;
  if (ops / n > 1) t++;
  *total = t;
  *measured = t > 1 ? t - 1 : 1;
}

/* Resident set now, in MiB. */
static double rss_now_mb(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return 0;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  fclose(f);
  return resident * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

static void run_s1(const char *config, size_t n) {
  loop_t loop;
  loop_init(&loop);
  memset(&w1, 0, sizeof w1);
  int32_t span;
  w1.loop = &loop;
  w1.n = n;
  w1.delays = spread_delays_ms(n, &span);
  w1.timers = calloc(n, sizeof *w1.timers);
  w1.fired = malloc(n * sizeof *w1.fired);
  w1.clock = calloc(n / SAMPLE_EVERY + 2, sizeof *w1.clock);
  if (w1.timers == NULL || w1.fired == NULL || w1.clock == NULL) abort();
  /* Touched now, so that the RSS before scheduling holds the program's own arrays. */
  memset(w1.fired, 0xff, n * sizeof *w1.fired);
  double before = rss_now_mb();
  size_t rounds, measured;
  scaling_rounds(n, &rounds, &measured);
  span_t sum = {0};
  char what[64], extra[96];
  snprintf(what, sizeof what, "S1 %s cloop", config);
  for (size_t r = 0; r < rounds; r++) {
    w1.count = 0;
    add_callback(&loop, w1_kickoff, NULL);
    loop_run(&loop);
    w1_check(what, span);
    if (r >= rounds - measured) sum.wall_ms += w1.span.wall_ms, sum.cpu_ms += w1.span.cpu_ms;
  }
  snprintf(extra, sizeof extra, ",\"rounds\":%zu,\"rssBeforeMb\":%.6g", measured, before);
  emit("S1", config, n, &sum, (double)n * measured, extra);
  loop_close(&loop);
  free((void *)w1.delays), free(w1.timers), free(w1.fired), free(w1.clock);
}

static struct {
  size_t n;
  ctimer_t *timers;
  const int32_t *delays;
  const int32_t *order;
  span_t span;
} s2;

static void s2_removed(loop_t *loop, void *arg) {
  (void)loop;
  fail("S2 cloop", "removed timer %zu ran", (size_t)(intptr_t)arg);
}

static void s2_kickoff(loop_t *loop, void *arg) {
  (void)arg;
  for (size_t i = 0; i < s2.n; i++) timer_start(loop, &s2.timers[i], (uint64_t)s2.delays[i] * 1000000u, s2_removed, (void *)(intptr_t)i);
  span_start(&s2.span);
  for (size_t k = 0; k < s2.n; k++) timer_stop(loop, &s2.timers[s2.order[k]]);
  span_stop(&s2.span);
  loop_stop(loop);
}

static void run_s2(const char *config, size_t n) {
  loop_t loop;
  loop_init(&loop);
  int32_t span;
  s2.n = n;
  s2.delays = spread_delays_ms(n, &span);
  s2.order = permutation(n);
  s2.timers = calloc(n, sizeof *s2.timers);
  if (s2.timers == NULL) abort();
  size_t rounds, measured;
  scaling_rounds(n, &rounds, &measured);
  span_t sum = {0};
  for (size_t r = 0; r < rounds; r++) {
    add_callback(&loop, s2_kickoff, NULL);
    loop_run(&loop);
    if (loop.heap_len != 0) fail("S2 cloop", "%zu timers still pending", loop.heap_len);
    if (r >= rounds - measured) sum.wall_ms += s2.span.wall_ms, sum.cpu_ms += s2.span.cpu_ms;
  }
  char extra[48];
  snprintf(extra, sizeof extra, ",\"rounds\":%zu", measured);
  emit("S2", config, n, &sum, (double)n * measured, extra);
  loop_close(&loop);
  free((void *)s2.delays), free((void *)s2.order), free(s2.timers);
}

/* ---- W2: schedule + remove churn ---- */

static size_t w2_kept_fired;
static span_t w2_span;
static size_t w2_n;
static ctimer_t **w2_kept;

static void w2_cancelled(loop_t *loop, void *arg) {
  (void)loop;
  fail("W2 cloop", "removed timer %zu ran", (size_t)(intptr_t)arg);
}

static void w2_kept_cb(loop_t *loop, void *arg) { (void)loop, (void)arg, w2_kept_fired++; }

static void w2_finish(loop_t *loop, void *arg) {
  (void)arg;
  span_stop(&w2_span);
  loop_stop(loop);
}

static void w2_kickoff(loop_t *loop, void *arg) {
  (void)arg;
  span_start(&w2_span);
  size_t kept = 0;
  for (size_t i = 0; i < w2_n; i++) {
    /* Each timer is the caller's own allocation, freed when it is removed. */
    ctimer_t *t = malloc(sizeof *t);
    if (i % 10 == 9) {
      timer_start(loop, t, 10000000000u, w2_kept_cb, (void *)(intptr_t)i);
      w2_kept[kept++] = t;
    } else {
      timer_start(loop, t, 10000000000u, w2_cancelled, (void *)(intptr_t)i);
      timer_stop(loop, t);
      free(t);
    }
  }
  add_callback(loop, w2_finish, NULL);
}

static void run_w2(const char *config, size_t n) {
  loop_t loop;
  loop_init(&loop);
  w2_n = n;
  w2_kept_fired = 0;
  w2_kept = calloc(n / 10 + 1, sizeof *w2_kept);
  add_callback(&loop, w2_kickoff, NULL);
  loop_run(&loop);
  if (w2_kept_fired != 0) fail("W2 cloop", "%zu timers due in 10 s ran within one turn", w2_kept_fired);
  if (loop.heap_len != n / 10) fail("W2 cloop", "%zu timers pending, not %zu", loop.heap_len, n / 10);
  emit("W2", config, n, &w2_span, (double)n, "");
  for (size_t i = 0; i < n / 10; i++) free(w2_kept[i]);
  free(w2_kept);
  loop_close(&loop);
}

/* ---- W3: callbacks ---- */

static struct {
  size_t n, next;
  int chain;
  span_t span;
} w3;

static void w3_step(loop_t *loop, void *arg) {
  size_t i = (size_t)(intptr_t)arg;
  if (i != w3.next) fail(w3.chain ? "W3 chain cloop" : "W3 batch cloop", "callback %zu ran when %zu was due", i, w3.next);
  w3.next++;
  if (w3.next == w3.n) {
    span_stop(&w3.span);
    loop_stop(loop);
  } else if (w3.chain) {
    add_callback(loop, w3_step, (void *)(intptr_t)w3.next);
  }
}

static void w3_kickoff(loop_t *loop, void *arg) {
  (void)arg;
  span_start(&w3.span);
  if (w3.chain) add_callback(loop, w3_step, (void *)0);
  else
    for (size_t i = 0; i < w3.n; i++) add_callback(loop, w3_step, (void *)(intptr_t)i);
}

static void run_w3(const char *config, size_t n) {
  loop_t loop;
  loop_init(&loop);
  memset(&w3, 0, sizeof w3);
  w3.n = n;
  w3.chain = strcmp(config, "chain") == 0;
  add_callback(&loop, w3_kickoff, NULL);
  loop_run(&loop);
  if (w3.next != n) fail("W3 cloop", "%zu of %zu callbacks ran", w3.next, n);
  emit("W3", config, n, &w3.span, (double)n, "");
  loop_close(&loop);
}

/* ---- W4: ping-pong over socketpairs ---- */

#define MESSAGE_SIZE 64

typedef struct {
  io_t client, server;
  size_t pair, round, have;
  uint8_t sent[MESSAGE_SIZE], got[MESSAGE_SIZE];
} pingpong_t;

static struct {
  size_t pairs, rounds, finished, total;
  const char *what;
  span_t span;
} w4;

/* The message layout of bench/lib/pingpong.ts. */
static void fill_message(uint8_t *buf, size_t pair, size_t round) {
  for (int j = 0; j < 4; j++) buf[j] = (uint8_t)(round >> (8 * j));
  buf[4] = (uint8_t)pair;
  buf[5] = (uint8_t)(pair >> 8);
  for (int j = 6; j < MESSAGE_SIZE; j++) buf[j] = (uint8_t)(j * 13 + pair);
}

static void w4_send(pingpong_t *pp) {
  fill_message(pp->sent, pp->pair, pp->round);
  ssize_t w = write(pp->client.fd, pp->sent, MESSAGE_SIZE);
  if (w != MESSAGE_SIZE) fail(w4.what, "pair %zu wrote %zd of %d bytes", pp->pair, w, MESSAGE_SIZE);
}

static void w4_echo(loop_t *loop, io_t *io, uint32_t events) {
  (void)loop, (void)events;
  uint8_t buf[4096];
  ssize_t r = read(io->fd, buf, sizeof buf);
  if (r <= 0) return;
  ssize_t w = write(io->fd, buf, (size_t)r);
  if (w != r) fail(w4.what, "echo wrote %zd of %zd bytes", w, r);
}

static void w4_client(loop_t *loop, io_t *io, uint32_t events) {
  (void)events;
  pingpong_t *pp = io->data;
  ssize_t r = read(io->fd, pp->got + pp->have, MESSAGE_SIZE - pp->have);
  if (r < 0) return;
  if (r == 0) fail(w4.what, "pair %zu: the echo side closed", pp->pair);
  pp->have += (size_t)r;
  if (pp->have < MESSAGE_SIZE) return;
  if (memcmp(pp->got, pp->sent, MESSAGE_SIZE) != 0) fail(w4.what, "pair %zu round %zu: the echo differs from the message", pp->pair, pp->round);
  pp->have = 0;
  pp->round++;
  w4.total++;
  if (pp->round < w4.rounds) w4_send(pp);
  else if (++w4.finished == w4.pairs) {
    span_stop(&w4.span);
    loop_stop(loop);
  }
}

static pingpong_t *w4_pps;

static void w4_kickoff(loop_t *loop, void *arg) {
  (void)loop, (void)arg;
  span_start(&w4.span);
  for (size_t p = 0; p < w4.pairs; p++) w4_send(&w4_pps[p]);
}

static void run_w4(const char *config, size_t n) {
  char what[64];
  snprintf(what, sizeof what, "W4 %s cloop", config);
  memset(&w4, 0, sizeof w4);
  w4.what = what;
  w4.pairs = strtoul(config, NULL, 10);
  if (w4.pairs == 0) fail(what, "unknown configuration");
  w4.rounds = n / w4.pairs;
  loop_t loop;
  loop_init(&loop);
  w4_pps = calloc(w4.pairs, sizeof *w4_pps);
  for (size_t p = 0; p < w4.pairs; p++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) perror("socketpair"), exit(1);
    pingpong_t *pp = &w4_pps[p];
    pp->pair = p;
    pp->client = (io_t){sv[0], w4_client, pp};
    pp->server = (io_t){sv[1], w4_echo, pp};
    add_handler(&loop, &pp->client);
    add_handler(&loop, &pp->server);
  }
  add_callback(&loop, w4_kickoff, NULL);
  loop_run(&loop);
  for (size_t p = 0; p < w4.pairs; p++) {
    remove_handler(&loop, &w4_pps[p].client), remove_handler(&loop, &w4_pps[p].server);
    close(w4_pps[p].client.fd), close(w4_pps[p].server.fd);
  }
  free(w4_pps);
  loop_close(&loop);
  size_t total = w4.rounds * w4.pairs;
  if (w4.total != total) fail(what, "%zu of %zu round trips", w4.total, total);
  char extra[128];
  snprintf(extra, sizeof extra, ",\"pairs\":%zu,\"roundTripsPerSec\":%.6g", w4.pairs, total / (w4.span.wall_ms / 1000));
  emit("W4", config, total, &w4.span, (double)total, extra);
}

/* ---- W5: idle ---- */

static struct {
  size_t window_ms, fires;
  uint64_t t0, fired_at;
  span_t span;
  ctimer_t timer, end;
} w5;

static void w5_fire(loop_t *loop, void *arg) {
  (void)loop, (void)arg;
  w5.fires++;
  w5.fired_at = clock_ns(CLOCK_MONOTONIC) - w5.t0;
}

static void w5_end(loop_t *loop, void *arg) {
  (void)arg;
  span_stop(&w5.span);
  loop_stop(loop);
}

static void w5_kickoff(loop_t *loop, void *arg) {
  (void)arg;
  span_start(&w5.span);
  w5.t0 = clock_ns(CLOCK_MONOTONIC);
  timer_start(loop, &w5.timer, (uint64_t)w5.window_ms * 1000000u / 3, w5_fire, NULL);
  timer_start(loop, &w5.end, (uint64_t)w5.window_ms * 1000000u, w5_end, NULL);
}

static void run_w5(const char *config, size_t window_ms) {
  loop_t loop;
  loop_init(&loop);
  memset(&w5, 0, sizeof w5);
  w5.window_ms = window_ms;
  add_callback(&loop, w5_kickoff, NULL);
  loop_run(&loop);
  loop_close(&loop);
  if (w5.fires != 1) fail("W5 cloop", "the timer ran %zu times", w5.fires);
  if (w5.fired_at < (uint64_t)window_ms * 1000000u / 3 - 1000000u) fail("W5 cloop", "the timer ran early");
  char extra[256];
  snprintf(extra, sizeof extra, ",\"windowMs\":%zu,\"timerAtMs\":%.6g,\"epochStartMs\":%.0f,\"epochEndMs\":%.0f",
           window_ms, w5.fired_at / 1e6, w5.span.epoch_start_ms, w5.span.epoch_end_ms);
  emit("W5", config, 1, &w5.span, 1, extra);
}

#include "chttp.c"

/* ---- main ---- */

typedef struct {
  const char *name;
  const char *configs[6];
  size_t full_n;
  void (*run)(const char *config, size_t n);
} scenario_t;

static const scenario_t scenarios[] = {
    {"w1", {"random", "equal", NULL}, 1000000, run_w1},
    {"w2", {"churn", NULL}, 1000000, run_w2},
    {"w3", {"chain", "batch", NULL}, 1000000, run_w3},
    {"w4", {"1pair", "100pairs", NULL}, 200000, run_w4},
    {"w5", {"idle", NULL}, 3000, run_w5},
    {"w7", {"1conn", "64conns", NULL}, 3000, run_w7},
    {"s1", {"1k", "10k", "100k", "1M", "4M", NULL}, 1000000, run_s1},
    {"s2", {"1k", "10k", "100k", "1M", "4M", NULL}, 1000000, run_s2},
};

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "prng") == 0) {
    uint32_t state = SEED;
    int k = argc >= 3 ? atoi(argv[2]) : 8;
    for (int i = 0; i < k; i++) printf(i ? " %u" : "%u", mulberry32(&state));
    printf("\n");
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "perm") == 0) {
    size_t n = strtoull(argv[2], NULL, 10);
    int k = argc >= 4 ? atoi(argv[3]) : 8;
    if (n == 0) return 1;
    int32_t *p = permutation(n);
    for (int i = 0; i < k && (size_t)i < n; i++) printf(i ? " %d" : "%d", p[i]);
    printf("\n");
    free(p);
    return 0;
  }
  for (size_t s = 0; argc >= 2 && s < sizeof scenarios / sizeof *scenarios; s++) {
    const scenario_t *sc = &scenarios[s];
    if (strcmp(argv[1], sc->name) != 0) continue;
    size_t n = argc >= 4 ? strtoull(argv[3], NULL, 10) : sc->full_n;
    if (n == 0) fprintf(stderr, "size must be a positive integer\n"), exit(1);
    for (int c = 0; c < 6 && sc->configs[c] != NULL; c++)
      if (argc < 3 || strcmp(argv[2], sc->configs[c]) == 0) {
        sc->run(sc->configs[c], n);
        if (argc >= 3) return 0;
      }
    if (argc >= 3) fprintf(stderr, "unknown configuration '%s'\n", argv[2]), exit(1);
    return 0;
  }
  fprintf(stderr, "usage: cloop w1|w2|w3|w4|w5|w7|s1|s2|prng|perm [config] [n]\n");
  return 1;
}
