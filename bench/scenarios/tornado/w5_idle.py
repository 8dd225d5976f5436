"""W5 on Tornado: one timer at a third of the window (1 s of 3 s), nothing
else, and a timer that stops the loop at the window's end. Reports CPU ms over
the window and its wall-clock bounds, which the harness matches against a
syscall trace to count poll calls. The size argument is the window in ms."""
import time

import _common
from measure import Span, emit, fail, jobs


def run(config, window_ms):
    what = "W5 tornado"
    loop = _common.new_loop()
    span = Span()
    state = {"fires": 0, "at": -1.0}

    def fire(t0):
        state["fires"] += 1
        state["at"] = (time.perf_counter() - t0) * 1e3

    def end():
        span.stop()
        loop.stop()

    def kickoff():
        span.start()
        loop.call_later(window_ms / 3000, fire, time.perf_counter())
        loop.call_later(window_ms / 1000, end)

    loop.add_callback(kickoff)
    loop.start()
    loop.close()
    if state["fires"] != 1:
        fail(what, "the timer ran %d times" % state["fires"])
    if state["at"] < window_ms / 3 - 1:
        fail(what, "the timer ran early, at %.3f ms" % state["at"])
    emit(scenario="W5", peer="tornado", config=config, n=1, wallMs=span.wall_ms, cpuMs=span.cpu_ms,
         nsPerOp=span.cpu_ms * 1e6, windowMs=window_ms, timerAtMs=state["at"],
         epochStartMs=span.epoch_start_ms, epochEndMs=span.epoch_end_ms)


if __name__ == "__main__":
    for config, n in jobs(["idle"], 3000):
        run(config, n)
