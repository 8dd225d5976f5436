// The blocking watchdog (build/Release/wasm_ioloop_watchdog.node): a thread per
// Node environment that notices when one user function of a loop has run past
// the loop's blocking threshold, and takes that function's JavaScript stack
// while it still runs.
//
// It is a separate addon from the main shim because it uses V8's and Node's C++
// APIs (v8::Isolate::RequestInterrupt, v8::StackTrace, node::
// AddEnvironmentCleanupHook), which Bun and Deno do not have: a missing symbol
// there fails the load of the whole library. These APIs are not ABI-stable, so
// the addon is built against the running Node's headers and registers with
// NODE_MODULE_VERSION: Node refuses to load it under another major version.
// src/watchdog.ts loads it in Node only.
//
// How one span is watched (a "span" is one call of a user function by the
// engine; the loop's own poll is never inside one):
//   - JavaScript writes the span's start (performance.now(), ms, never 0) into
//     cells[START] before the call and 0 after it, with plain stores to a
//     Float64Array over a SharedArrayBuffer. Nothing else crosses per call.
//   - The thread sleeps until the earliest moment a span could reach its
//     threshold: start + threshold for a span in progress, else now + threshold
//     (a span that starts meanwhile is seen before its own deadline).
//   - At start + threshold, with the same span still in progress, it writes the
//     start into cells[FIRED] and calls RequestInterrupt. V8 runs the interrupt
//     callback on the JavaScript thread at its next safe point (a loop back
//     edge or a function entry), where it may use V8's API but must not run
//     JavaScript: it takes v8::StackTrace::CurrentStackTrace, writes the
//     warning to stderr (fd 2) at once, and keeps the text for
//     take(), which the loop calls when the function returns.
//   - If the interrupt has not run one more threshold later, the JavaScript
//     thread is inside native code (a synchronous system call, a native
//     addon, spawnSync...), where V8 cannot interrupt it: the thread writes an
//     "in native code" line to stderr itself. Unless the JavaScript thread is
//     runnable and got less than half of that time on a CPU: then it is
//     starved (a loaded machine), not in native code, and the thread looks
//     again one threshold later. The interrupt stays requested; if it runs
//     before the span ends, it writes the stack from where the code came back
//     to JavaScript.
//
// Thread-safety: the exports run on the JavaScript thread of the environment
// that loaded the addon, and touch only that environment's state. The watchdog
// thread and the JavaScript thread share each slot's bookkeeping under the
// state's mutex; the cells are read with relaxed atomic loads (an aligned
// 8-byte store is never torn on the hosts this builds for).

#include <node.h>
#include <node_version.h>
#include <v8.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

namespace {

// The cells JavaScript shares with the thread (src/watchdog.ts has the same).
constexpr int kStart = 0;  // start of the span in progress (performance.now() ms), 0: none
constexpr int kFired = 1;  // start of the last span the thread asked a stack for
constexpr int kKind = 2;   // what runs: 1 callback, 2 timer, 3 handler
constexpr int kCells = 3;

// Frames kept of a stack (Error.stackTraceLimit is 10 by default; a blocking
// function is often deep inside a library).
constexpr int kFrameLimit = 32;

// The longest the thread sleeps without looking, in ms.
constexpr double kMaxSleepMs = 1000;

double MonoMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double LoadCell(const double* cell) {
  double v;
  __atomic_load(cell, &v, __ATOMIC_RELAXED);
  return v;
}

void StoreCell(double* cell, double v) { __atomic_store(cell, &v, __ATOMIC_RELAXED); }

const char* KindName(double kind) {
  if (kind == 2) return "timer";
  if (kind == 3) return "handler";
  return "callback";
}

// Writes all of `text` to `fd`, waiting (at most a second in all) while a
// nonblocking fd is full. Errors are ignored: there is nowhere to report them.
void WriteAll(int fd, const std::string& text) {
  const char* p = text.data();
  size_t left = text.size();
  double give_up = MonoMs() + 1000;
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n > 0) {
      p += n;
      left -= static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      double wait = give_up - MonoMs();
      if (wait <= 0) return;
      pollfd pfd = {fd, POLLOUT, 0};
      poll(&pfd, 1, static_cast<int>(wait) + 1);
    } else {
      return;
    }
  }
}

std::string Printf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Printf(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return std::string();
  return std::string(buf, static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1);
}

std::string Utf8(v8::Isolate* isolate, v8::Local<v8::Value> value) {
  if (value.IsEmpty() || !value->IsString()) return std::string();
  v8::String::Utf8Value utf8(isolate, value);
  return *utf8 == nullptr ? std::string() : std::string(*utf8, static_cast<size_t>(utf8.length()));
}

// One loop's watch: its cells, and what the thread and the interrupt know of it.
struct Slot {
  int id = 0;
  std::shared_ptr<v8::BackingStore> store;  // keeps the cells' memory alive
  double* cells = nullptr;
  // [function, kind] of the span in progress, written by JavaScript; read by
  // the interrupt for the function's name. JavaScript thread only.
  v8::Global<v8::Array> current;
  // The script of the watch's own `exit` (src/watchdog.ts), whose first frame
  // means the user function has returned (see OnInterrupt).
  int self_script = -1;

  // Under State::mu.
  double threshold_ms = 0;
  double offset_ms = 0;     // monotonic ms = JavaScript ms + offset_ms
  double fired = 0;         // span the interrupt was requested for
  double requested_at = 0;  // monotonic ms of that request
  double requested_cpu = 0; // CPU ms of the JavaScript thread then
  double served = 0;        // span whose interrupt ran
  double native = 0;        // span reported as in native code

  // What the interrupt took, for take(). JavaScript thread only.
  double cap_start = 0;
  double cap_at_ms = 0;
  bool cap_late = false;
  std::string cap_stack;
};

struct State {
  explicit State(v8::Isolate* iso) : isolate(iso) {
    // Made on the JavaScript thread (the module's init).
    js_tid = static_cast<pid_t>(syscall(SYS_gettid));
    if (pthread_getcpuclockid(pthread_self(), &js_cpu_clock) != 0) has_cpu_clock = false;
    pthread_mutex_init(&mu, nullptr);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&cv, &attr);
    pthread_condattr_destroy(&attr);
  }
  ~State() {
    pthread_cond_destroy(&cv);
    pthread_mutex_destroy(&mu);
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  v8::Isolate* const isolate;
  // The JavaScript thread, as the watchdog thread looks at it.
  pid_t js_tid = 0;
  clockid_t js_cpu_clock{};
  bool has_cpu_clock = true;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  // Under mu.
  bool quit = false;    // the thread is asked to end
  bool closed = false;  // the environment is being torn down
  std::vector<std::unique_ptr<Slot>> slots;
  // JavaScript thread only.
  bool running = false;
  pthread_t thread{};
  int next_id = 1;
  // The environment's reference (the cleanup hook's argument and the exports' data).
  std::shared_ptr<State>* self = nullptr;
};

Slot* FindSlot(State* st, int id) {
  for (auto& s : st->slots)
    if (s->id == id) return s.get();
  return nullptr;
}

// An interrupt request in flight. It holds the state, so a request that V8
// serves after the environment's teardown finds `closed` rather than freed
// memory; one V8 never serves is never freed (a few bytes, at exit only).
struct Ticket {
  std::shared_ptr<State> st;
  int id;
  double start;
};

std::string FormatStack(v8::Isolate* isolate, v8::Local<v8::StackTrace> trace) {
  std::string out;
  int frames = trace->GetFrameCount();
  for (int i = 0; i < frames; i++) {
    v8::Local<v8::StackFrame> frame = trace->GetFrame(isolate, static_cast<uint32_t>(i));
    std::string name = Utf8(isolate, frame->GetFunctionName());
    std::string script = Utf8(isolate, frame->GetScriptNameOrSourceURL());
    if (script.empty()) script = frame->IsEval() ? "<eval>" : "<anonymous>";
    std::string where = Printf("%s:%d:%d", script.c_str(), frame->GetLineNumber(), frame->GetColumn());
    out += "    at ";
    if (!name.empty()) {
      if (frame->IsConstructor()) out += "new ";
      out += name + " (" + where + ")\n";
    } else {
      out += where + "\n";
    }
  }
  if (frames == 0) out += "    (no JavaScript frames)\n";
  return out;
}

// The name of current[0], from V8's own records (no JavaScript runs).
std::string FunctionName(v8::Isolate* isolate, Slot* s) {
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  if (context.IsEmpty() || s->current.IsEmpty()) return "(anonymous)";
  v8::Local<v8::Array> current = s->current.Get(isolate);
  v8::Local<v8::Value> value;
  if (!current->Get(context, 0).ToLocal(&value) || !value->IsFunction()) return "(anonymous)";
  v8::Local<v8::Function> fn = value.As<v8::Function>();
  std::string prefix;
  v8::Local<v8::Value> target = fn->GetBoundFunction();
  while (target->IsFunction()) {
    prefix += "bound ";
    fn = target.As<v8::Function>();
    target = fn->GetBoundFunction();
  }
  std::string name = Utf8(isolate, fn->GetDebugName());
  return name.empty() ? prefix + "(anonymous)" : prefix + name;
}

void OnInterrupt(v8::Isolate* isolate, void* data) {
  std::unique_ptr<Ticket> ticket(static_cast<Ticket*>(data));
  State* st = ticket->st.get();
  pthread_mutex_lock(&st->mu);
  Slot* s = st->closed ? nullptr : FindSlot(st, ticket->id);
  if (s == nullptr || s->fired != ticket->start) {
    pthread_mutex_unlock(&st->mu);
    return;
  }
  s->served = ticket->start;
  bool late = s->native == ticket->start;
  double threshold_ms = s->threshold_ms;
  double blocked_ms = MonoMs() - (ticket->start + s->offset_ms);
  pthread_mutex_unlock(&st->mu);
  // The slot is freed only on this thread, so it outlives this call. A span
  // that ended before V8 got here has no stack to show.
  if (LoadCell(&s->cells[kStart]) != ticket->start) return;

  v8::HandleScope scope(isolate);
  v8::Local<v8::StackTrace> trace =
      v8::StackTrace::CurrentStackTrace(isolate, kFrameLimit, v8::StackTrace::kDetailed);
  // V8 serves interrupts at function entries too: one served on entry to the
  // watch's `exit`, before it marks the span's end, comes after the user
  // function returned, and its stack is the loop's, not the function's.
  if (trace->GetFrameCount() > 0) {
    v8::Local<v8::StackFrame> top = trace->GetFrame(isolate, 0);
    if (top->GetScriptId() == s->self_script && Utf8(isolate, top->GetFunctionName()) == "exit") return;
  }
  std::string stack = FormatStack(isolate, trace);
  std::string name = FunctionName(isolate, s);
  const char* kind = KindName(LoadCell(&s->cells[kKind]));
  s->cap_start = ticket->start;
  s->cap_at_ms = blocked_ms;
  s->cap_late = late;
  s->cap_stack = stack;
  std::string header =
      late ? Printf("[wasm-ioloop] blocking: %s %s is back in JavaScript after %.3f s, most of it in native code, "
                    "and still blocks the loop (threshold %g s); its JavaScript stack:\n",
                    kind, name.c_str(), blocked_ms / 1e3, threshold_ms / 1e3)
           : Printf("[wasm-ioloop] blocking: %s %s has blocked the loop for %.3f s (threshold %g s) "
                    "and is still running; its JavaScript stack:\n",
                    kind, name.c_str(), blocked_ms / 1e3, threshold_ms / 1e3);
  WriteAll(2, header + stack);
}

// CPU time the JavaScript thread has used, in ms (0 if it cannot be read).
double JsCpuMs(const State* st) {
  timespec ts;
  if (!st->has_cpu_clock || clock_gettime(st->js_cpu_clock, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// The JavaScript thread's scheduling state from /proc ('R' runnable, 'S'
// sleeping, 'D' in uninterruptible I/O...), or 0 if it cannot be read.
char JsState(const State* st) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(st->js_tid));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[512];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  // "tid (comm) S ...": comm may hold spaces and parentheses, so after the last ')'.
  const char* paren = strrchr(buf, ')');
  return paren != nullptr && paren[1] == ' ' ? paren[2] : 0;
}

// Looks at one slot; returns the moment (monotonic ms) it needs looking at
// again, and appends to `out` what the thread itself must write.
double CheckSlot(const std::shared_ptr<State>& st, Slot* s, double now, std::string* out) {
  double threshold = s->threshold_ms;
  double start = LoadCell(&s->cells[kStart]);
  if (start == 0) return now + threshold;
  double start_mono = start + s->offset_ms;
  if (start != s->fired) {
    double deadline = start_mono + threshold;
    if (now < deadline) return deadline;
    s->fired = start;
    s->requested_at = now;
    s->requested_cpu = JsCpuMs(st.get());
    StoreCell(&s->cells[kFired], start);
    st->isolate->RequestInterrupt(OnInterrupt, new Ticket{st, s->id, start});
    return now + threshold;
  }
  if (s->served == start || s->native == start) return now + threshold;
  double second = s->requested_at + threshold;
  if (now < second) return second;
  double cpu = JsCpuMs(st.get());
  if (JsState(st.get()) == 'R' && st->has_cpu_clock && cpu - s->requested_cpu < (now - s->requested_at) / 2) {
    // Runnable but mostly off the CPU: starved, not in native code. Look again.
    s->requested_at = now;
    s->requested_cpu = cpu;
    return now + threshold;
  }
  s->native = start;
  *out += Printf("[wasm-ioloop] blocking: a %s has blocked the loop for %.3f s (threshold %g s), in native code: "
                 "its JavaScript stack cannot be taken until it is back in JavaScript\n",
                 KindName(LoadCell(&s->cells[kKind])), (now - start_mono) / 1e3, threshold / 1e3);
  return now + threshold;
}

void* ThreadMain(void* arg) {
  std::shared_ptr<State> st = *static_cast<std::shared_ptr<State>*>(arg);
  delete static_cast<std::shared_ptr<State>*>(arg);
  std::string out;
  pthread_mutex_lock(&st->mu);
  while (!st->quit) {
    double now = MonoMs();
    double next = now + kMaxSleepMs;
    for (auto& s : st->slots) {
      double when = CheckSlot(st, s.get(), now, &out);
      if (when < next) next = when;
    }
    if (!out.empty()) {
      pthread_mutex_unlock(&st->mu);
      WriteAll(2, out);
      out.clear();
      pthread_mutex_lock(&st->mu);
      continue;
    }
    // Wake a little after the deadline rather than before it.
    double wake = next + 0.05;
    timespec ts;
    ts.tv_sec = static_cast<time_t>(wake / 1e3);
    ts.tv_nsec = static_cast<long>((wake - static_cast<double>(ts.tv_sec) * 1e3) * 1e6);
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    if (ts.tv_nsec < 0) ts.tv_nsec = 0;
    pthread_cond_timedwait(&st->cv, &st->mu, &ts);
  }
  pthread_mutex_unlock(&st->mu);
  return nullptr;
}

// Starts the thread (with every signal blocked: signals belong to the JavaScript
// thread). Returns 0 or an errno.
int StartThread(State* st) {
  if (st->running) return 0;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  auto* arg = new std::shared_ptr<State>(*st->self);
  int rc = pthread_create(&st->thread, nullptr, ThreadMain, arg);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    delete arg;
    return rc;
  }
  st->running = true;
  return 0;
}

// Ends and joins the thread. JavaScript thread only.
void StopThread(State* st) {
  if (!st->running) return;
  pthread_mutex_lock(&st->mu);
  st->quit = true;
  pthread_cond_signal(&st->cv);
  pthread_mutex_unlock(&st->mu);
  pthread_join(st->thread, nullptr);
  pthread_mutex_lock(&st->mu);
  st->quit = false;
  pthread_mutex_unlock(&st->mu);
  st->running = false;
}

// The environment's teardown: ends the thread and frees every slot. A request
// still in flight keeps the state (not the slots) until V8 serves it.
void Cleanup(void* arg) {
  auto* self = static_cast<std::shared_ptr<State>*>(arg);
  State* st = self->get();
  pthread_mutex_lock(&st->mu);
  st->closed = true;
  pthread_mutex_unlock(&st->mu);
  StopThread(st);
  std::vector<std::unique_ptr<Slot>> slots;
  pthread_mutex_lock(&st->mu);
  slots.swap(st->slots);
  pthread_mutex_unlock(&st->mu);
  slots.clear();
  st->self = nullptr;
  delete self;
}

// ---- exports ----

State* StateOf(const v8::FunctionCallbackInfo<v8::Value>& info) {
  return static_cast<State*>(info.Data().As<v8::External>()->Value());
}

void Throw(v8::Isolate* isolate, bool type_error, const std::string& message) {
  v8::Local<v8::String> text =
      v8::String::NewFromUtf8(isolate, message.c_str()).FromMaybe(v8::Local<v8::String>());
  if (text.IsEmpty()) return;
  isolate->ThrowException(type_error ? v8::Exception::TypeError(text) : v8::Exception::Error(text));
}

bool PositiveMs(const v8::FunctionCallbackInfo<v8::Value>& info, int i, const char* fn, const char* what,
                double* out) {
  v8::Local<v8::Value> v = info[i];
  double d = v->IsNumber() ? v.As<v8::Number>()->Value() : -1;
  if (!(d > 0) || !std::isfinite(d)) {
    Throw(info.GetIsolate(), true, Printf("%s: %s must be a finite number of ms > 0", fn, what));
    return false;
  }
  *out = d;
  return true;
}

bool FiniteMs(const v8::FunctionCallbackInfo<v8::Value>& info, int i, const char* fn, const char* what,
              double* out) {
  v8::Local<v8::Value> v = info[i];
  if (!v->IsNumber() || !std::isfinite(v.As<v8::Number>()->Value())) {
    Throw(info.GetIsolate(), true, Printf("%s: %s must be a finite number", fn, what));
    return false;
  }
  *out = v.As<v8::Number>()->Value();
  return true;
}

bool SlotId(const v8::FunctionCallbackInfo<v8::Value>& info, const char* fn, int* out) {
  v8::Local<v8::Value> v = info[0];
  if (!v->IsInt32() || v.As<v8::Int32>()->Value() <= 0) {
    Throw(info.GetIsolate(), true, Printf("%s: id must be an id from open()", fn));
    return false;
  }
  *out = v.As<v8::Int32>()->Value();
  return true;
}

// open(cells: Float64Array (SharedArrayBuffer, >= 3 elements),
//      current: unknown[], thresholdMs, nowMs: performance.now(), exit: the
//      watch's exit function): id
void Open(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  State* st = StateOf(info);
  if (!info[0]->IsFloat64Array()) {
    Throw(isolate, true, "open: cells must be a Float64Array");
    return;
  }
  v8::Local<v8::Float64Array> view = info[0].As<v8::Float64Array>();
  if (view->Length() < static_cast<size_t>(kCells)) {
    Throw(isolate, true, Printf("open: cells must have at least %d elements", kCells));
    return;
  }
  if (!info[1]->IsArray()) {
    Throw(isolate, true, "open: current must be an array");
    return;
  }
  double threshold = 0, now = 0;
  if (!PositiveMs(info, 2, "open", "thresholdMs", &threshold) || !FiniteMs(info, 3, "open", "nowMs", &now)) return;
  if (!info[4]->IsFunction()) {
    Throw(isolate, true, "open: exit must be a function");
    return;
  }
  std::shared_ptr<v8::BackingStore> store = view->Buffer()->GetBackingStore();
  if (store->Data() == nullptr) {
    Throw(isolate, true, "open: cells has no memory (detached?)");
    return;
  }
  auto slot = std::make_unique<Slot>();
  slot->id = st->next_id++;
  slot->cells = reinterpret_cast<double*>(static_cast<char*>(store->Data()) + view->ByteOffset());
  slot->store = std::move(store);
  slot->current.Reset(isolate, info[1].As<v8::Array>());
  slot->self_script = info[4].As<v8::Function>()->ScriptId();
  slot->threshold_ms = threshold;
  slot->offset_ms = MonoMs() - now;
  int id = slot->id;
  pthread_mutex_lock(&st->mu);
  st->slots.push_back(std::move(slot));
  pthread_cond_signal(&st->cv);
  pthread_mutex_unlock(&st->mu);
  int rc = StartThread(st);
  if (rc != 0) {
    pthread_mutex_lock(&st->mu);
    st->slots.pop_back();
    pthread_mutex_unlock(&st->mu);
    Throw(isolate, false, Printf("open: cannot start the watchdog thread: %s", strerror(rc)));
    return;
  }
  info.GetReturnValue().Set(id);
}

// setThreshold(id, thresholdMs, nowMs): void
void SetThreshold(const v8::FunctionCallbackInfo<v8::Value>& info) {
  State* st = StateOf(info);
  int id;
  double threshold = 0, now = 0;
  if (!SlotId(info, "setThreshold", &id) || !PositiveMs(info, 1, "setThreshold", "thresholdMs", &threshold) ||
      !FiniteMs(info, 2, "setThreshold", "nowMs", &now))
    return;
  pthread_mutex_lock(&st->mu);
  Slot* s = FindSlot(st, id);
  if (s != nullptr) {
    s->threshold_ms = threshold;
    s->offset_ms = MonoMs() - now;
    pthread_cond_signal(&st->cv);
  }
  pthread_mutex_unlock(&st->mu);
  if (s == nullptr) Throw(info.GetIsolate(), false, Printf("setThreshold: no open watch %d", id));
}

// close(id): void. Idempotent; the last close ends and joins the thread.
void Close(const v8::FunctionCallbackInfo<v8::Value>& info) {
  State* st = StateOf(info);
  int id;
  if (!SlotId(info, "close", &id)) return;
  std::unique_ptr<Slot> gone;
  pthread_mutex_lock(&st->mu);
  for (auto it = st->slots.begin(); it != st->slots.end(); ++it) {
    if ((*it)->id == id) {
      gone = std::move(*it);
      st->slots.erase(it);
      break;
    }
  }
  bool none = st->slots.empty();
  pthread_mutex_unlock(&st->mu);
  if (none) StopThread(st);
}

// take(id, start): undefined when the watchdog did not fire for the span that
// began at `start`; else { native, stack, atMs, late }.
void Take(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  State* st = StateOf(info);
  int id;
  double start = 0;
  if (!SlotId(info, "take", &id) || !FiniteMs(info, 1, "take", "start", &start)) return;
  pthread_mutex_lock(&st->mu);
  Slot* s = FindSlot(st, id);
  bool fired = s != nullptr && s->fired == start && start != 0;
  bool native = fired && s->native == start;
  pthread_mutex_unlock(&st->mu);
  if (!fired) return;
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  v8::Local<v8::Object> out = v8::Object::New(isolate);
  bool have = s->cap_start == start;
  v8::Local<v8::Value> stack = v8::Null(isolate);
  if (have) {
    v8::Local<v8::String> text;
    if (v8::String::NewFromUtf8(isolate, s->cap_stack.c_str(), v8::NewStringType::kNormal,
                                static_cast<int>(s->cap_stack.size()))
            .ToLocal(&text))
      stack = text;
  }
  auto set = [&](const char* key, v8::Local<v8::Value> value) {
    v8::Local<v8::String> k = v8::String::NewFromUtf8(isolate, key).ToLocalChecked();
    return out->Set(context, k, value).FromMaybe(false);
  };
  if (!set("native", v8::Boolean::New(isolate, native)) || !set("stack", stack) ||
      !set("atMs", v8::Number::New(isolate, have ? s->cap_at_ms : 0)) ||
      !set("late", v8::Boolean::New(isolate, have && s->cap_late)))
    return;
  s->cap_start = 0;
  s->cap_stack.clear();
  info.GetReturnValue().Set(out);
}

// threadRunning(): whether this environment's watchdog thread exists (tests).
void ThreadRunning(const v8::FunctionCallbackInfo<v8::Value>& info) {
  info.GetReturnValue().Set(StateOf(info)->running);
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  v8::Isolate* isolate = context->GetIsolate();
  auto* self = new std::shared_ptr<State>(std::make_shared<State>(isolate));
  State* st = self->get();
  st->self = self;
  node::AddEnvironmentCleanupHook(isolate, Cleanup, self);
  v8::Local<v8::External> data = v8::External::New(isolate, st);
  struct {
    const char* name;
    v8::FunctionCallback fn;
  } const functions[] = {
      {"open", Open}, {"setThreshold", SetThreshold}, {"close", Close}, {"take", Take}, {"threadRunning", ThreadRunning},
  };
  for (const auto& f : functions) {
    v8::Local<v8::Function> fn;
    if (!v8::FunctionTemplate::New(isolate, f.fn, data)->GetFunction(context).ToLocal(&fn)) return;
    v8::Local<v8::String> name = v8::String::NewFromUtf8(isolate, f.name).ToLocalChecked();
    fn->SetName(name);
    if (exports->Set(context, name, fn).IsNothing()) return;
  }
  v8::Local<v8::String> abi = v8::String::NewFromUtf8(isolate, "nodeModuleVersion").ToLocalChecked();
  if (exports->Set(context, abi, v8::Integer::New(isolate, NODE_MODULE_VERSION)).IsNothing()) return;
  v8::Local<v8::String> v8v = v8::String::NewFromUtf8(isolate, "v8Version").ToLocalChecked();
  std::string version = Printf("%d.%d.%d", V8_MAJOR_VERSION, V8_MINOR_VERSION, V8_BUILD_NUMBER);
  exports->Set(context, v8v, v8::String::NewFromUtf8(isolate, version.c_str()).ToLocalChecked()).Check();
}
