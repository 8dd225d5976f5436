/* Argument helpers shared by every exported function.
 *
 * Rules every export follows:
 *   - Misuse (a wrong type, a missing argument, a value out of range, a closed
 *     object) throws a TypeError or Error whose message names the function, the
 *     argument and the rule, e.g. "epollCtl: fd must be an integer >= 0 (got 1.5)".
 *     Missing arguments read as undefined, so they fail the same checks.
 *   - A failing system call never throws: it comes back as -errno.
 *   - Nothing here aborts. When an N-API call itself fails, the helper throws
 *     (unless an exception is already pending) and the export returns NULL.
 */
#ifndef WASM_IOLOOP_UTIL_H
#define WASM_IOLOOP_UTIL_H

#include <node_api.h>

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fetch exactly `n` arguments (missing ones are undefined) and the function's
 * data pointer (the per-environment state, see addon.h). */
static inline bool ioloop_args(napi_env env, napi_callback_info info, size_t n,
                               napi_value *argv, void **data) {
  size_t argc = n;
  return napi_get_cb_info(env, info, &argc, argv, NULL, data) == napi_ok;
}

/* Throw a TypeError (type_error) or an Error with a printf-style message,
 * unless an exception is already pending. `code` becomes the error's `code`
 * property (NULL for none). */
static inline void ioloop_throw(napi_env env, bool type_error, const char *code,
                                const char *fmt, ...) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  char msg[384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (type_error)
    napi_throw_type_error(env, code, msg);
  else
    napi_throw_error(env, code, msg);
}

/* The symbolic name of an errno value ("EBADF"), as Node names it in an
 * error's `code`; NULL for a value this list lacks. The list covers what the
 * shim's own calls (poll, epoll, eventfd, pthread, libuv's poll and timer) can
 * report. */
static inline const char *ioloop_errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOSPC: return "ENOSPC";
    case EPIPE: return "EPIPE";
    case ERANGE: return "ERANGE";
    case EDEADLK: return "EDEADLK";
    case ENOSYS: return "ENOSYS";
    case ELOOP: return "ELOOP";
    case ENOTSOCK: return "ENOTSOCK";
    case EOPNOTSUPP: return "ENOTSUP";
    case ETIMEDOUT: return "ETIMEDOUT";
  }
  return NULL;
}

/* Throw an Error for a failed system call: the printf-style message, then
 * ": <description> (<NAME>)", with `code` set to the errno's name. */
static inline void ioloop_throw_errno(napi_env env, int err, const char *fmt, ...) {
  char what[256], buf[128];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  const char *name = ioloop_errno_name(err);
  char fallback[24];
  if (name == NULL) {
    snprintf(fallback, sizeof fallback, "E%d", err);
    name = fallback;
  }
  /* The GNU strerror_r: it returns the text, which may or may not be buf. */
  const char *text = strerror_r(err, buf, sizeof buf);
  ioloop_throw(env, false, name, "%s: %s (%s)", what, text, name);
}

/* Describe a value for an error message: a number prints as itself, anything
 * else as its typeof. */
static inline void ioloop_describe(napi_env env, napi_value v, char *out,
                                   size_t size) {
  napi_valuetype t = napi_undefined;
  if (napi_typeof(env, v, &t) != napi_ok) {
    snprintf(out, size, "unknown");
    return;
  }
  switch (t) {
    case napi_number: {
      double d = 0;
      napi_get_value_double(env, v, &d);
      if (d != d) {
        snprintf(out, size, "NaN");
      } else if (d > 1.7976931348623157e308 || d < -1.7976931348623157e308) {
        snprintf(out, size, d > 0 ? "Infinity" : "-Infinity");
      } else {
        /* The shortest of the usual precisions that reads back exactly, so
         * 0.1 prints as JavaScript prints it. */
        snprintf(out, size, "%.15g", d);
        if (strtod(out, NULL) != d) snprintf(out, size, "%.17g", d);
      }
      return;
    }
    case napi_undefined: snprintf(out, size, "undefined"); return;
    case napi_null: snprintf(out, size, "null"); return;
    case napi_boolean: snprintf(out, size, "boolean"); return;
    case napi_string: snprintf(out, size, "string"); return;
    case napi_symbol: snprintf(out, size, "symbol"); return;
    case napi_object: snprintf(out, size, "object"); return;
    case napi_function: snprintf(out, size, "function"); return;
    case napi_external: snprintf(out, size, "external"); return;
    case napi_bigint: snprintf(out, size, "bigint"); return;
  }
  snprintf(out, size, "unknown");
}

/* Throw "fn: name must be rule (got X)" as a TypeError. */
static inline void ioloop_throw_arg(napi_env env, napi_value v, const char *fn,
                                    const char *name, const char *rule) {
  char got[64];
  ioloop_describe(env, v, got, sizeof got);
  ioloop_throw(env, true, "ERR_INVALID_ARG_TYPE", "%s: %s must be %s (got %s)",
               fn, name, rule, got);
}

/* An integer-valued number in [min, max]. Rejects non-numbers, NaN, infinities
 * and fractions. `rule` is the human wording, e.g. "an integer >= 0". */
static inline bool ioloop_arg_int(napi_env env, napi_value v, const char *fn,
                                  const char *name, const char *rule, double min,
                                  double max, int64_t *out) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= min && d <= max) ||
      d != (double)(int64_t)d) {
    ioloop_throw_arg(env, v, fn, name, rule);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

/* A file descriptor: an integer in [0, INT32_MAX]. */
static inline bool ioloop_arg_fd(napi_env env, napi_value v, const char *fn,
                                 const char *name, int *out) {
  int64_t x = 0;
  if (!ioloop_arg_int(env, v, fn, name, "an integer >= 0", 0, 2147483647.0, &x))
    return false;
  *out = (int)x;
  return true;
}

/* Any number except NaN (infinities allowed). */
static inline bool ioloop_arg_number(napi_env env, napi_value v, const char *fn,
                                     const char *name, const char *rule,
                                     double *out) {
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != d) {
    ioloop_throw_arg(env, v, fn, name, rule);
    return false;
  }
  *out = d;
  return true;
}

static inline bool ioloop_arg_bool(napi_env env, napi_value v, const char *fn,
                                   const char *name, bool *out) {
  if (napi_get_value_bool(env, v, out) != napi_ok) {
    ioloop_throw_arg(env, v, fn, name, "a boolean");
    return false;
  }
  return true;
}

/* A string of 1..size-1 UTF-8 bytes with no NUL, copied into out. */
static inline bool ioloop_arg_string(napi_env env, napi_value v, const char *fn,
                                     const char *name, char *out, size_t size) {
  size_t len = 0;
  napi_valuetype t = napi_undefined;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_string ||
      napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    ioloop_throw_arg(env, v, fn, name, "a string");
    return false;
  }
  if (len == 0 || len >= size) {
    ioloop_throw(env, true, "ERR_INVALID_ARG_VALUE",
                 "%s: %s must be a non-empty string of at most %zu bytes (got %zu)",
                 fn, name, size - 1, len);
    return false;
  }
  size_t copied = 0;
  if (napi_get_value_string_utf8(env, v, out, size, &copied) != napi_ok)
    return false;
  if (strlen(out) != copied) {
    ioloop_throw(env, true, "ERR_INVALID_ARG_VALUE",
                 "%s: %s must not contain NUL characters", fn, name);
    return false;
  }
  return true;
}

static inline bool ioloop_arg_function(napi_env env, napi_value v,
                                       const char *fn, const char *name) {
  napi_valuetype t = napi_undefined;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_function) {
    ioloop_throw_arg(env, v, fn, name, "a function");
    return false;
  }
  return true;
}

/* The native struct wrapped in argument `v` by this shim under `tag`, or NULL with
 * a TypeError thrown ("<fn>: <name> must be <rule>"). The tag keeps an object
 * wrapped by another addon, or by another part of this one, from being taken for
 * ours. */
static inline void *ioloop_arg_wrapped(napi_env env, napi_value v, const napi_type_tag *tag,
                                       const char *fn, const char *name, const char *rule) {
  napi_valuetype t = napi_undefined;
  bool tagged = false;
  void *data = NULL;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_object ||
      napi_check_object_type_tag(env, v, tag, &tagged) != napi_ok || !tagged ||
      napi_unwrap(env, v, &data) != napi_ok || data == NULL) {
    ioloop_throw_arg(env, v, fn, name, rule);
    return NULL;
  }
  return data;
}

/* Return helpers: NULL (with an exception pending) if N-API itself fails. */
static inline napi_value ioloop_int(napi_env env, int32_t x) {
  napi_value v = NULL;
  if (napi_create_int32(env, x, &v) != napi_ok) {
    ioloop_throw(env, false, NULL, "napi_create_int32 failed");
    return NULL;
  }
  return v;
}

static inline napi_value ioloop_double(napi_env env, double x) {
  napi_value v = NULL;
  if (napi_create_double(env, x, &v) != napi_ok) {
    ioloop_throw(env, false, NULL, "napi_create_double failed");
    return NULL;
  }
  return v;
}

static inline napi_value ioloop_undefined(napi_env env) {
  napi_value v = NULL;
  napi_get_undefined(env, &v);
  return v;
}

#endif
