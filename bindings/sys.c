/* Raw system calls for the descriptors that handlers watch (docs/API.md, "Raw
 * system calls for descriptors").
 *
 * Every descriptor made here is O_NONBLOCK and O_CLOEXEC and belongs to the
 * caller: the environment's cleanup never closes it. Syscall failures come back
 * as -errno (never thrown) so src/ can turn them into SysError; EINTR is
 * retried. Name resolution failures come back as libuv's negative UV_EAI_*
 * codes, which util.getSystemErrorName() names (e.g. -3008 is 'ENOTFOUND').
 *
 * SIGPIPE: write() uses send(MSG_NOSIGNAL) on sockets. Pipes have no such flag;
 * there it relies on Node ignoring SIGPIPE for the whole process (it sets
 * SIG_IGN at startup), so a write to a pipe without a reader gives -EPIPE.
 *
 * Name resolution (listenTcp, connectTcp with a host name) calls getaddrinfo on
 * the calling thread and may block on DNS; numeric addresses never do.
 */
#define _GNU_SOURCE
#include "addon.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
/* For libuv's UV_EAI_* numbers only: they are constants, not symbols. */
#include <uv.h>

/* Long enough for any numeric address or DNS name (NI_MAXHOST is 1025). */
#define HOST_MAX 1025

static int close_keep_errno(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
  return -1;
}

/* getaddrinfo's EAI_* codes as libuv numbers them, so that JavaScript can name
 * them with util.getSystemErrorName(). */
static int eai_to_uv(int eai) {
  switch (eai) {
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY: return UV_EAI_ADDRFAMILY;
#endif
#ifdef EAI_NODATA
    case EAI_NODATA: return UV_EAI_NODATA;
#endif
    case EAI_AGAIN: return UV_EAI_AGAIN;
    case EAI_BADFLAGS: return UV_EAI_BADFLAGS;
    case EAI_FAIL: return UV_EAI_FAIL;
    case EAI_FAMILY: return UV_EAI_FAMILY;
    case EAI_MEMORY: return UV_EAI_MEMORY;
    case EAI_NONAME: return UV_EAI_NONAME;
    case EAI_SERVICE: return UV_EAI_SERVICE;
    case EAI_SOCKTYPE: return UV_EAI_SOCKTYPE;
    case EAI_SYSTEM: return errno ? -errno : UV_EAI_FAIL;
    default: return UV_EAI_FAIL;
  }
}

static int resolve(const char *host, int port, bool passive, struct addrinfo **out) {
  char service[8];
  snprintf(service, sizeof service, "%d", port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  int r;
  do {
    errno = 0;
    r = getaddrinfo(host, service, &hints, out);
  } while (r == EAI_SYSTEM && errno == EINTR);
  return r == 0 ? 0 : eai_to_uv(r);
}

static void set_nodelay(int fd) {
  int one = 1;
  /* Best effort: a socket that is not TCP simply refuses it. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* A pair of fds as a JS array, or -errno as a number. */
static napi_value pair_or_errno(napi_env env, int r, const int fds[2]) {
  if (r < 0) return ioloop_int(env, -errno);
  napi_value arr, a, b;
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok ||
      napi_create_int32(env, fds[0], &a) != napi_ok ||
      napi_create_int32(env, fds[1], &b) != napi_ok ||
      napi_set_element(env, arr, 0, a) != napi_ok ||
      napi_set_element(env, arr, 1, b) != napi_ok) {
    close(fds[0]);
    close(fds[1]);
    return NULL;
  }
  return arr;
}

static napi_value pipe_js(napi_env env, napi_callback_info info) {
  if (!ioloop_args(env, info, 0, NULL, NULL)) return NULL;
  int fds[2];
  return pair_or_errno(env, pipe2(fds, O_NONBLOCK | O_CLOEXEC), fds);
}

static napi_value socketpair_js(napi_env env, napi_callback_info info) {
  if (!ioloop_args(env, info, 0, NULL, NULL)) return NULL;
  int fds[2];
  int r = socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
  return pair_or_errno(env, r, fds);
}

static size_t typedarray_element_size(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array: return 1;
    case napi_int16_array:
    case napi_uint16_array: return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array: return 8;
  }
  return 1;
}

/* The bytes an ArrayBufferView covers (its byteOffset and byteLength). A
 * detached view has length 0. */
static bool arg_view(napi_env env, napi_value v, const char *fn, void **data,
                     size_t *len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t count = 0;
    if (napi_get_typedarray_info(env, v, &type, &count, data, NULL, NULL) != napi_ok)
      return false;
    *len = count * typedarray_element_size(type);
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    return napi_get_dataview_info(env, v, len, data, NULL, NULL) == napi_ok;
  }
  ioloop_throw_arg(env, v, fn, "view", "an ArrayBufferView (TypedArray, DataView or Buffer)");
  return false;
}

/* read(fd, view): bytes read, 0 at EOF, or -errno (-EAGAIN if it would block). */
static napi_value read_js(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!ioloop_args(env, info, 2, argv, NULL)) return NULL;
  int fd;
  void *data = NULL;
  size_t len = 0;
  if (!ioloop_arg_fd(env, argv[0], "read", "fd", &fd)) return NULL;
  if (!arg_view(env, argv[1], "read", &data, &len)) return NULL;
  if (len == 0 || data == NULL) {
    /* A read of 0 bytes returns 0, which would read as EOF. */
    ioloop_throw(env, true, "ERR_INVALID_ARG_VALUE",
                 "read: view must have byteLength > 0 (a 0-byte read looks like EOF)");
    return NULL;
  }
  ssize_t r;
  do {
    r = read(fd, data, len);
  } while (r < 0 && errno == EINTR);
  return ioloop_double(env, r < 0 ? (double)-errno : (double)r);
}

/* write(fd, view): bytes written or -errno (-EAGAIN if it would block). */
static napi_value write_js(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!ioloop_args(env, info, 2, argv, NULL)) return NULL;
  int fd;
  void *data = NULL;
  size_t len = 0;
  if (!ioloop_arg_fd(env, argv[0], "write", "fd", &fd)) return NULL;
  if (!arg_view(env, argv[1], "write", &data, &len)) return NULL;
  char empty = 0;
  if (data == NULL) data = &empty;
  ssize_t r;
  do {
    r = send(fd, data, len, MSG_NOSIGNAL);
  } while (r < 0 && errno == EINTR);
  if (r < 0 && errno == ENOTSOCK) {
    do {
      r = write(fd, data, len);
    } while (r < 0 && errno == EINTR);
  }
  return ioloop_double(env, r < 0 ? (double)-errno : (double)r);
}

/* Sets up a fresh socket for one resolved address: 0, or -errno. */
typedef int (*socket_setup)(int fd, const struct addrinfo *ai, const void *ctx);

/* Resolves host:port and tries each address in turn with a new nonblocking,
 * close-on-exec socket handed to `setup`. Returns the first socket whose setup
 * succeeds; else the last -errno (or the resolver's negative code). */
static int open_first(const char *host, int port, bool passive, socket_setup setup,
                      const void *ctx) {
  struct addrinfo *list = NULL;
  int err = resolve(host, port, passive, &list);
  if (err != 0) return err;
  int result = -EADDRNOTAVAIL;
  for (struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0) {
      result = -errno;
      continue;
    }
    int r = setup(fd, ai, ctx);
    if (r == 0) {
      result = fd;
      break;
    }
    result = r;
    close_keep_errno(fd);
  }
  freeaddrinfo(list);
  return result;
}

struct listen_options {
  int backlog;
  bool reuse_port;
};

static int setup_listener(int fd, const struct addrinfo *ai, const void *ctx) {
  const struct listen_options *o = ctx;
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      (o->reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
      bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, o->backlog) < 0)
    return -errno;
  return 0;
}

static int setup_connect(int fd, const struct addrinfo *ai, const void *ctx) {
  (void)ctx;
  set_nodelay(fd);
  /* An interrupted nonblocking connect goes on in the background, like
   * EINPROGRESS. */
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS ||
      errno == EINTR)
    return 0;
  return -errno;
}

/* listenTcp(host, port, backlog, reusePort): a listening fd or -errno. */
static napi_value listen_tcp_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "listenTcp";
  napi_value argv[4];
  if (!ioloop_args(env, info, 4, argv, NULL)) return NULL;
  char host[HOST_MAX];
  int64_t port, backlog;
  bool reuse_port;
  if (!ioloop_arg_string(env, argv[0], fn, "host", host, sizeof host)) return NULL;
  if (!ioloop_arg_int(env, argv[1], fn, "port", "an integer in [0, 65535]", 0, 65535,
                      &port))
    return NULL;
  if (!ioloop_arg_int(env, argv[2], fn, "backlog", "an integer >= 0", 0, 2147483647.0,
                      &backlog))
    return NULL;
  if (!ioloop_arg_bool(env, argv[3], fn, "reusePort", &reuse_port)) return NULL;

  struct listen_options opts = {(int)backlog, reuse_port};
  return ioloop_int(env, open_first(host, (int)port, true, setup_listener, &opts));
}

/* localPort(fd): the bound port of a TCP socket, or -errno. */
static napi_value local_port_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!ioloop_args(env, info, 1, argv, NULL)) return NULL;
  int fd;
  if (!ioloop_arg_fd(env, argv[0], "localPort", "fd", &fd)) return NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return ioloop_int(env, -errno);
  if (ss.ss_family == AF_INET)
    return ioloop_int(env, ntohs(((struct sockaddr_in *)&ss)->sin_port));
  if (ss.ss_family == AF_INET6)
    return ioloop_int(env, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
  return ioloop_int(env, -EAFNOSUPPORT);
}

/* accept(fd): a new nonblocking fd, -EAGAIN when none is pending, or -errno. */
static napi_value accept_js(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!ioloop_args(env, info, 1, argv, NULL)) return NULL;
  int fd;
  if (!ioloop_arg_fd(env, argv[0], "accept", "fd", &fd)) return NULL;
  struct sockaddr_storage ss;
  int conn;
  for (;;) {
    socklen_t len = sizeof ss;
    conn = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    /* A connection reset while it waited in the backlog is not the listener's
     * failure: take the next one, as libuv does. */
    if (conn >= 0 || (errno != EINTR && errno != ECONNABORTED)) break;
  }
  if (conn < 0) return ioloop_int(env, -errno);
  if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) set_nodelay(conn);
  return ioloop_int(env, conn);
}

/* connectTcp(host, port): a connecting fd (WRITE readiness means done; read
 * SO_ERROR through a read or write to learn how it went) or -errno. */
static napi_value connect_tcp_js(napi_env env, napi_callback_info info) {
  static const char fn[] = "connectTcp";
  napi_value argv[2];
  if (!ioloop_args(env, info, 2, argv, NULL)) return NULL;
  char host[HOST_MAX];
  int64_t port;
  if (!ioloop_arg_string(env, argv[0], fn, "host", host, sizeof host)) return NULL;
  if (!ioloop_arg_int(env, argv[1], fn, "port", "an integer in [1, 65535]", 1, 65535,
                      &port))
    return NULL;
  return ioloop_int(env, open_first(host, (int)port, false, setup_connect, NULL));
}

const ioloop_export ioloop_sys_exports[] = {
    {"pipe", pipe_js},
    {"socketpair", socketpair_js},
    {"read", read_js},
    {"write", write_js},
    {"listenTcp", listen_tcp_js},
    {"localPort", local_port_js},
    {"accept", accept_js},
    {"connectTcp", connect_tcp_js},
    {NULL, NULL},
};
