"""What every Python benchmark program shares: its arguments, the measured
span, the result line, failing loudly, and the timer-run check (the same
rules as bench/lib/checks.ts and bench/lib/measure.ts)."""
import json
import math
import os
import resource
import sys
import time

CHECK_FAILED = 2
SAMPLE_EVERY = 1024


def jobs(configs, full_n):
    """Reads `<config> [n]` from argv (or BENCH_N); without a config, every configuration."""
    args = sys.argv[1:]
    n = int(args[1] if len(args) > 1 else os.environ.get("BENCH_N", full_n))
    if n <= 0:
        raise ValueError("size must be a positive integer")
    if not args:
        return [(c, n) for c in configs]
    if args[0] not in configs:
        raise ValueError("unknown configuration %r (have: %s)" % (args[0], ", ".join(configs)))
    return [(args[0], n)]


def _cpu_ms():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return (ru.ru_utime + ru.ru_stime) * 1e3


class Span:
    """Wall and CPU (user + sys of the whole process) time between start() and stop()."""

    def __init__(self):
        self.wall_ms = self.cpu_ms = float("nan")
        self.epoch_start_ms = self.epoch_end_ms = float("nan")

    def start(self):
        self.epoch_start_ms = time.time() * 1e3
        self._cpu0 = _cpu_ms()
        self._wall0 = time.perf_counter()

    def stop(self):
        self.wall_ms = (time.perf_counter() - self._wall0) * 1e3
        self.cpu_ms = _cpu_ms() - self._cpu0
        self.epoch_end_ms = time.time() * 1e3


def emit(**row):
    """Prints the result line, adding the process's peak RSS so far."""
    row["rssPeakMb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for k, v in row.items():
        if k.startswith("epoch"):
            row[k] = round(v, 3)
        elif isinstance(v, float) and math.isfinite(v) and not v.is_integer():
            row[k] = float("%.6g" % v)
    sys.stdout.write(json.dumps(row, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def fail(what, message):
    """Ends the program at once: its result is wrong, so it prints no row."""
    sys.stderr.write("CHECK FAILED %s: %s\n" % (what, message))
    sys.stderr.flush()
    os._exit(CHECK_FAILED)


def check_timer_run(fired, delays_ms, clock):
    """Every timer once; equal delays in insertion order; with `clock` (loop
    time in seconds before timer k*SAMPLE_EVERY and after the last), deadline
    order. Returns None, or the first fault."""
    n = len(delays_ms)
    if len(fired) != n:
        return "%d of %d timers ran" % (len(fired), n)
    seen = bytearray(n)
    last_of_delay = [-1] * 1001
    max_lo = -math.inf
    for j, i in enumerate(fired):
        if not 0 <= i < n:
            return "run %d reports timer %d, out of range" % (j, i)
        if seen[i]:
            return "timer %d ran twice" % i
        seen[i] = 1
        d = delays_ms[i]
        if last_of_delay[d] > i:
            return "timer %d (%d ms) ran after timer %d of the same delay, which was scheduled later" % (
                i, d, last_of_delay[d])
        last_of_delay[d] = i
        if clock is not None:
            k = i // SAMPLE_EVERY
            lo = clock[k] + d / 1000
            hi = clock[k + 1] + d / 1000
            if hi + 1e-6 < max_lo:
                return "timer %d (%d ms, deadline <= %.6f s) ran after one with deadline >= %.6f s" % (i, d, hi, max_lo)
            if lo > max_lo:
                max_lo = lo
    return None
