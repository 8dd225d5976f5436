"""W1 / W1e on Tornado: n one-shot call_later timers, delays uniform over
0..1000 ms ("random", W1) or all 50 ms ("equal", W1e), scheduled from one
callback, run until all have fired. nsPerOp: CPU ns per timer. Checked: every
timer once, in deadline order, equal deadlines in insertion order."""
import _common
from measure import SAMPLE_EVERY, Span, check_timer_run, emit, fail, jobs
from prng import delays_ms


def run(config, n):
    delays = delays_ms(n, config)
    seconds = [d / 1000 for d in delays]
    clock = [0.0] * ((n + SAMPLE_EVERY - 1) // SAMPLE_EVERY + 1)
    fired = []
    span = Span()
    loop = _common.new_loop()

    def on_fire(i):
        fired.append(i)
        if len(fired) == n:
            span.stop()
            loop.stop()

    def kickoff():
        span.start()
        call_later, time = loop.call_later, loop.time
        for i in range(n):
            if i % SAMPLE_EVERY == 0:
                clock[i // SAMPLE_EVERY] = time()
            call_later(seconds[i], on_fire, i)
        clock[-1] = time()

    loop.add_callback(kickoff)
    loop.start()
    loop.close()
    fault = check_timer_run(fired, delays, clock)
    if fault is not None:
        fail("W1 %s tornado" % config, fault)
    emit(scenario="W1e" if config == "equal" else "W1", peer="tornado", config=config, n=n,
         wallMs=span.wall_ms, cpuMs=span.cpu_ms, nsPerOp=span.cpu_ms * 1e6 / n)


if __name__ == "__main__":
    for config, n in jobs(["random", "equal"], 1000000):
        run(config, n)
