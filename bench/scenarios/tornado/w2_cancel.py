"""W2 on Tornado: n timers at +10 s, 9 of every 10 removed right after they
are scheduled, then one loop turn. nsPerOp: CPU ns per scheduled timer (each
with a removal 9 times in 10); peak RSS is the other figure. A removed timer's
callback fails the program if it runs."""
import _common
from measure import Span, emit, fail, jobs

WHAT = "W2 tornado"


def cancelled(i):
    fail(WHAT, "removed timer %d ran" % i)


def run(config, n):
    loop = _common.new_loop()
    kept_fired = [0]
    span = Span()

    def kept(i):
        kept_fired[0] += 1

    def finish():
        span.stop()
        loop.stop()

    def kickoff():
        span.start()
        call_later, remove_timeout = loop.call_later, loop.remove_timeout
        for i in range(n):
            if i % 10 == 9:
                call_later(10, kept, i)
            else:
                remove_timeout(call_later(10, cancelled, i))
        # The next turn runs this, after the loop's own bookkeeping.
        loop.add_callback(finish)

    loop.add_callback(kickoff)
    loop.start()
    loop.close(all_fds=True)
    if kept_fired[0] != 0:
        fail(WHAT, "%d timers due in 10 s ran within one turn" % kept_fired[0])
    emit(scenario="W2", peer="tornado", config=config, n=n,
         wallMs=span.wall_ms, cpuMs=span.cpu_ms, nsPerOp=span.cpu_ms * 1e6 / n)


if __name__ == "__main__":
    for config, n in jobs(["churn"], 1000000):
        run(config, n)
