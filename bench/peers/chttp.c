/*
 * W7, HTTP keep-alive, on cloop's epoll loop (this file is included by cloop.c,
 * after the loop): an HTTP/1.1 server on 127.0.0.1 with the rules of
 * examples/http.ts (request line and headers, Content-Length bodies, pipelined
 * requests, keep-alive and Connection: close, "hello world" with Content-Length
 * and a Date made once a second), and wrk as a child process whose stdout is a
 * handler on the same loop. As bench/lib/wrk.ts: the pre-flight with
 * lib/w7-check.lua for W7_CHECK_MS on up to 4 connections, a warm-up of the
 * measured load for a third of n ms (at most 1 s), then the measured run with
 * lib/w7-load.lua for n ms, each ended by SIGINT; no response may be wrong and
 * wrk may count no error. The row's CPU is this process's (wrk is a child).
 *
 *   cloop w7 1conn|64conns [ms]
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#define W7_CHECK_MS 200
#define W7_MAX_HEAD (8 * 1024)
#define W7_MAX_BODY (1024 * 1024)
#define W7_BODY "hello world"

extern char **environ;

typedef struct hconn {
  io_t io;
  struct hconn *prev, *next;
  char *in; /* bytes of an incomplete request */
  size_t in_len, in_cap;
  char *out; /* bytes still to write */
  size_t out_len, out_off;
  int closing;
} hconn_t;

static struct {
  const char *what;
  int listen_fd;
  io_t listener;
  hconn_t *conns;
  size_t connections, requests, refused;
  /* The responses of the current second. */
  time_t second;
  char ok[256], close_[256], keep10[256];
  size_t ok_len, close_len, keep10_len;
  /* wrk */
  pid_t wrk;
  io_t wrk_out;
  char report[8192];
  size_t report_len;
  ctimer_t sigint;
  int phase; /* 0: pre-flight, 1: warm-up, 2: measured run */
  size_t connections_arg, ms;
  char check_line[8192], warm_line[8192], load_line[8192];
  span_t span;
  char lib[4096];
} w7;

static size_t w7_response(char *buf, size_t cap, const char *date, const char *connection) {
  int n = snprintf(buf, cap, "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Length: %zu\r\nContent-Type: text/plain\r\n%s%s%s\r\n%s", date,
                   strlen(W7_BODY), connection ? "Connection: " : "", connection ? connection : "", connection ? "\r\n" : "", W7_BODY);
  return (size_t)n;
}

static void w7_responses_now(void) {
  time_t now = time(NULL);
  if (now == w7.second) return;
  w7.second = now;
  char date[64];
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  w7.ok_len = w7_response(w7.ok, sizeof w7.ok, date, NULL);
  w7.close_len = w7_response(w7.close_, sizeof w7.close_, date, "close");
  w7.keep10_len = w7_response(w7.keep10, sizeof w7.keep10, date, "keep-alive");
}

static void w7_drop(loop_t *loop, hconn_t *c) {
  remove_handler(loop, &c->io);
  close(c->io.fd);
  if (c->prev) c->prev->next = c->next;
  else w7.conns = c->next;
  if (c->next) c->next->prev = c->prev;
  free(c->in);
  free(c->out);
  free(c);
}

static void w7_events(loop_t *loop, io_t *io, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.ptr = io};
  if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0) perror("epoll_ctl"), exit(1);
}

static int w7_is_name(const char *p, size_t len, const char *name) {
  if (strlen(name) != len) return 0;
  for (size_t i = 0; i < len; i++)
    if ((p[i] | 0x20) != name[i]) return 0;
  return 1;
}

/* Whether the comma-separated header value p[0..len) has `token` (lower case). */
static int w7_has_token(const char *p, size_t len, const char *token) {
  size_t i = 0, tl = strlen(token);
  while (i < len) {
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == ',')) i++;
    size_t start = i;
    while (i < len && p[i] != ',') i++;
    size_t stop = i;
    while (stop > start && (p[stop - 1] == ' ' || p[stop - 1] == '\t')) stop--;
    if (stop - start == tl) {
      size_t k = 0;
      while (k < tl && (p[start + k] | 0x20) == token[k]) k++;
      if (k == tl) return 1;
    }
  }
  return 0;
}

/* Parses the request at d[0..len): 0 = incomplete, 1 = a request (*end, *keep,
 * *http10 set), or the status of a refusal (400, 413, 431, 501, 505). */
static int w7_parse(const char *d, size_t len, size_t *end, int *keep, int *http10) {
  size_t i = 0;
  while (i < len && (d[i] == '\r' || d[i] == '\n')) i++;
  size_t line = i;
  long sp1 = -1, sp2 = -1;
  for (; i < len && d[i] != '\n'; i++)
    if (d[i] == ' ') {
      if (sp1 < 0) sp1 = (long)i;
      else if (sp2 < 0) sp2 = (long)i;
      else return 400;
    }
  if (i >= len) return i > W7_MAX_HEAD ? 431 : 0;
  size_t line_end = i > 0 && d[i - 1] == '\r' ? i - 1 : i;
  if (sp1 <= (long)line || sp2 <= sp1 + 1 || line_end - (size_t)sp2 != 9 || memcmp(d + sp2 + 1, "HTTP/1.", 7) != 0) return 400;
  char minor = d[sp2 + 8];
  if (minor != '0' && minor != '1') return 505;
  i++;
  size_t length = 0;
  int saw_length = 0, close_ = 0, keep_alive = 0;
  for (;;) {
    size_t start = i;
    long colon = -1;
    for (; i < len && d[i] != '\n'; i++)
      if (d[i] == ':' && colon < 0) colon = (long)i;
    if (i >= len) return i > W7_MAX_HEAD ? 431 : 0;
    size_t e = i > start && d[i - 1] == '\r' ? i - 1 : i;
    i++;
    if (e == start) break;
    if (i > W7_MAX_HEAD) return 431;
    if (colon <= (long)start) return 400;
    size_t v = (size_t)colon + 1, ve = e;
    while (v < ve && (d[v] == ' ' || d[v] == '\t')) v++;
    while (ve > v && (d[ve - 1] == ' ' || d[ve - 1] == '\t')) ve--;
    size_t nl = (size_t)colon - start;
    if (w7_is_name(d + start, nl, "content-length")) {
      if (v == ve) return 400;
      size_t n = 0;
      for (size_t k = v; k < ve; k++) {
        if (d[k] < '0' || d[k] > '9') return 400;
        n = n * 10 + (size_t)(d[k] - '0');
        if (n > W7_MAX_BODY) return 413;
      }
      if (saw_length && n != length) return 400;
      saw_length = 1, length = n;
    } else if (w7_is_name(d + start, nl, "connection")) {
      if (w7_has_token(d + v, ve - v, "close")) close_ = 1;
      if (w7_has_token(d + v, ve - v, "keep-alive")) keep_alive = 1;
    } else if (w7_is_name(d + start, nl, "transfer-encoding")) {
      return 501;
    }
  }
  if (len - i < length) return 0;
  *end = i + length;
  *http10 = minor == '0';
  *keep = !close_ && (*http10 ? keep_alive : 1);
  return 1;
}

static char w7_inbuf[64 * 1024];
static char *w7_outbuf;
static size_t w7_outcap;

static void w7_append(size_t *at, const char *p, size_t n) {
  if (*at + n > w7_outcap) {
    w7_outcap = (*at + n) * 2;
    w7_outbuf = realloc(w7_outbuf, w7_outcap);
    if (w7_outbuf == NULL) abort();
  }
  memcpy(w7_outbuf + *at, p, n);
  *at += n;
}

/* Writes p[0..n); keeps what the socket does not take and waits for EPOLLOUT. */
static void w7_send(loop_t *loop, hconn_t *c, const char *p, size_t n) {
  ssize_t w = send(c->io.fd, p, n, MSG_NOSIGNAL);
  if (w < 0 && errno != EAGAIN) {
    w7_drop(loop, c);
    return;
  }
  size_t done = w < 0 ? 0 : (size_t)w;
  if (done == n) {
    if (c->closing) w7_drop(loop, c);
    return;
  }
  c->out = malloc(n - done);
  if (c->out == NULL) abort();
  memcpy(c->out, p + done, n - done);
  c->out_len = n - done;
  c->out_off = 0;
  w7_events(loop, &c->io, EPOLLOUT);
}

static void w7_conn(loop_t *loop, io_t *io, uint32_t events) {
  hconn_t *c = io->data;
  if (c->out != NULL) {
    char *out = c->out;
    size_t n = c->out_len - c->out_off;
    c->out = NULL;
    w7_events(loop, io, EPOLLIN);
    w7_send(loop, c, out + c->out_off, n);
    free(out);
    return;
  }
  (void)events;
  ssize_t r = read(io->fd, w7_inbuf, sizeof w7_inbuf);
  if (r < 0 && errno == EAGAIN) return;
  if (r <= 0) {
    w7_drop(loop, c);
    return;
  }
  const char *d = w7_inbuf;
  size_t len = (size_t)r;
  if (c->in_len > 0) {
    if (c->in_len + len > c->in_cap) {
      c->in_cap = (c->in_len + len) * 2;
      c->in = realloc(c->in, c->in_cap);
      if (c->in == NULL) abort();
    }
    memcpy(c->in + c->in_len, w7_inbuf, len);
    c->in_len += len;
    d = c->in;
    len = c->in_len;
  }
  w7_responses_now();
  size_t at = 0, out = 0, end = 0;
  const char *first = NULL;
  size_t first_len = 0;
  char refusal[256];
  while (at < len) {
    int keep = 1, http10 = 0;
    int s = w7_parse(d + at, len - at, &end, &keep, &http10);
    if (s == 0) break;
    const char *reply;
    size_t reply_len;
    if (s == 1) {
      at += end;
      w7.requests++;
      if (!keep) c->closing = 1, reply = w7.close_, reply_len = w7.close_len;
      else if (http10) reply = w7.keep10, reply_len = w7.keep10_len;
      else reply = w7.ok, reply_len = w7.ok_len;
    } else {
      w7.refused++;
      c->closing = 1;
      reply_len = (size_t)snprintf(refusal, sizeof refusal, "HTTP/1.1 %d Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", s);
      reply = refusal;
    }
    if (first == NULL) first = reply, first_len = reply_len;
    else {
      if (out == 0) w7_append(&out, first, first_len);
      w7_append(&out, reply, reply_len);
    }
    if (c->closing) break;
  }
  /* Keep the incomplete rest (d may be c->in itself: move it down). */
  size_t rest = c->closing ? 0 : len - at;
  if (rest > 0) {
    if (rest > c->in_cap) {
      char *in = malloc(rest * 2);
      if (in == NULL) abort();
      memcpy(in, d + at, rest);
      free(c->in);
      c->in = in;
      c->in_cap = rest * 2;
    } else {
      memmove(c->in, d + at, rest);
    }
  }
  c->in_len = rest;
  if (first != NULL) w7_send(loop, c, out == 0 ? first : w7_outbuf, out == 0 ? first_len : out);
}

static void w7_accept(loop_t *loop, io_t *io, uint32_t events) {
  (void)events;
  for (;;) {
    int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    hconn_t *c = calloc(1, sizeof *c);
    if (c == NULL) abort();
    c->io = (io_t){fd, w7_conn, c};
    c->next = w7.conns;
    if (w7.conns) w7.conns->prev = c;
    w7.conns = c;
    w7.connections++;
    add_handler(loop, &c->io);
  }
}

/* ---- wrk, a child whose stdout the loop reads ---- */

static void w7_start_wrk(loop_t *loop);

static void w7_sigint(loop_t *loop, void *arg) {
  (void)loop, (void)arg;
  if (w7.wrk > 0) kill(w7.wrk, SIGINT);
}

static void w7_check(const char *line);
static void w7_no_errors(const char *label, const char *line);

static void w7_wrk_output(loop_t *loop, io_t *io, uint32_t events) {
  (void)events;
  if (w7.report_len + 1 >= sizeof w7.report) fail(w7.what, "wrk printed more than %zu bytes", sizeof w7.report);
  ssize_t r = read(io->fd, w7.report + w7.report_len, sizeof w7.report - 1 - w7.report_len);
  if (r < 0 && errno == EAGAIN) return;
  if (r > 0) {
    w7.report_len += (size_t)r;
    return;
  }
  /* EOF: wrk has ended. */
  remove_handler(loop, io);
  close(io->fd);
  timer_stop(loop, &w7.sigint);
  int status;
  if (waitpid(w7.wrk, &status, 0) < 0) perror("waitpid"), exit(1);
  w7.wrk = 0;
  w7.report[w7.report_len] = 0;
  char *line = strstr(w7.report, "\n{");
  line = line ? line + 1 : (w7.report[0] == '{' ? w7.report : NULL);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || line == NULL) fail(w7.what, "wrk ended with status %d and no result: %s", status, w7.report);
  char *nl = strchr(line, '\n');
  if (nl) *nl = 0;
  if (w7.phase == 0) {
    snprintf(w7.check_line, sizeof w7.check_line, "%s", line);
    w7_check(line);
    w7.phase = 1;
    w7_start_wrk(loop);
  } else if (w7.phase == 1) {
    snprintf(w7.warm_line, sizeof w7.warm_line, "%s", line);
    w7_no_errors("warm-up: ", line);
    w7.phase = 2;
    span_start(&w7.span);
    w7_start_wrk(loop);
  } else {
    span_stop(&w7.span);
    snprintf(w7.load_line, sizeof w7.load_line, "%s", line);
    loop_stop(loop);
  }
}

static void w7_start_wrk(loop_t *loop) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) perror("pipe2"), exit(1);
  size_t conns = w7.phase == 0 ? (w7.connections_arg < 4 ? w7.connections_arg : 4) : w7.connections_arg;
  size_t ms = w7.phase == 0 ? W7_CHECK_MS : w7.phase == 1 ? (w7.ms / 3 < 1000 ? (w7.ms + 1) / 3 : 1000) : w7.ms;
  char c_arg[32], d_arg[32], script[4200], url[64];
  snprintf(c_arg, sizeof c_arg, "-c%zu", conns);
  snprintf(d_arg, sizeof d_arg, "-d%zus", (ms + 999) / 1000 + 5);
  snprintf(script, sizeof script, "%s/%s", w7.lib, w7.phase == 0 ? "w7-check.lua" : "w7-load.lua");
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  getsockname(w7.listen_fd, (struct sockaddr *)&sa, &sl);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(sa.sin_port));
  char *argv[] = {"wrk", "-t1", c_arg, d_arg, "--timeout", "2s", "-s", script, url, NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  int err = posix_spawnp(&w7.wrk, "wrk", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (err != 0) fail(w7.what, "wrk: %s", strerror(err));
  close(fds[1]);
  fcntl(fds[0], F_SETFL, O_NONBLOCK);
  w7.report_len = 0;
  w7.wrk_out = (io_t){fds[0], w7_wrk_output, NULL};
  add_handler(loop, &w7.wrk_out);
  loop->now = clock_ns(CLOCK_MONOTONIC);
  timer_start(loop, &w7.sigint, (uint64_t)ms * 1000000u, w7_sigint, NULL);
}

/* A number field of a wrk JSON line. */
static double w7_field(const char *line, const char *name) {
  char key[64];
  snprintf(key, sizeof key, "\"%s\":", name);
  const char *p = strstr(line, key);
  if (p == NULL) fail(w7.what, "no %s in wrk's line %s", name, line);
  return strtod(p + strlen(key), NULL);
}

static void w7_no_errors(const char *label, const char *line) {
  static const char *const names[] = {"connect", "read", "write", "status", "timeout"};
  for (int i = 0; i < 5; i++)
    if (w7_field(line, names[i]) != 0) fail(w7.what, "%swrk counted errors: %s", label, line);
}

static void w7_check(const char *line) {
  double good = w7_field(line, "good"), bad = w7_field(line, "bad");
  if (bad != 0) fail(w7.what, "pre-flight: wrong responses: %s", line);
  if (good < 3 || good != w7_field(line, "requests")) fail(w7.what, "pre-flight: %s", line);
  w7_no_errors("pre-flight: ", line);
}

static void run_w7(const char *config, size_t ms) {
  char what[64];
  snprintf(what, sizeof what, "W7 %s cloop", config);
  memset(&w7, 0, sizeof w7);
  w7.what = what;
  w7.ms = ms;
  w7.connections_arg = strtoul(config, NULL, 10);
  if (w7.connections_arg == 0) fail(what, "unknown configuration");
  /* The Lua scripts: $W7_LIB, else bench/lib next to this source's bench/peers, else
   * next to the binary's bench/.build (where the harness builds it). */
  const char *lib = getenv("W7_LIB"), *src = __FILE__, *slash = strrchr(src, '/');
  char exe[2048], probe[4300];
  ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[el > 0 ? el : 0] = 0;
  char *exe_slash = strrchr(exe, '/');
  if (exe_slash != NULL) *exe_slash = 0;
  if (lib != NULL) snprintf(w7.lib, sizeof w7.lib, "%s", lib);
  else {
    snprintf(w7.lib, sizeof w7.lib, "%.*s/../lib", slash ? (int)(slash - src) : 1, slash ? src : ".");
    snprintf(probe, sizeof probe, "%s/w7-check.lua", w7.lib);
    if (access(probe, R_OK) != 0 && exe_slash != NULL) snprintf(w7.lib, sizeof w7.lib, "%s/../lib", exe);
  }
  loop_t loop;
  loop_init(&loop);
  w7.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(w7.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(w7.listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(w7.listen_fd, 511) < 0) perror("listen"), exit(1);
  w7.listener = (io_t){w7.listen_fd, w7_accept, NULL};
  add_handler(&loop, &w7.listener);
  w7_start_wrk(&loop);
  loop_run(&loop);

  while (w7.conns) w7_drop(&loop, w7.conns);
  remove_handler(&loop, &w7.listener);
  close(w7.listen_fd);
  loop_close(&loop);
  free(w7_outbuf);
  w7_outbuf = NULL, w7_outcap = 0;

  const char *line = w7.load_line;
  w7_no_errors("", line);
  double requests = w7_field(line, "requests"), duration_us = w7_field(line, "durationUs");
  double checked = w7_field(w7.check_line, "good"), got = checked + w7_field(w7.warm_line, "requests") + requests;
  if (requests <= 0) fail(what, "wrk completed no request");
  if ((double)w7.requests < got) fail(what, "the server answered %zu requests, wrk got %.0f responses", w7.requests, got);
  w7.span.wall_ms = duration_us / 1000;
  char extra[512];
  snprintf(extra, sizeof extra, ",\"connections\":%zu,\"requestsPerSec\":%.6g,\"requests\":%.0f,\"p50Us\":%.0f,\"p99Us\":%.0f,\"checked\":%.0f",
           w7.connections_arg, requests / (duration_us / 1e6), requests, w7_field(line, "p50Us"), w7_field(line, "p99Us"), checked);
  emit("W7", config, ms, &w7.span, requests, extra);
}
