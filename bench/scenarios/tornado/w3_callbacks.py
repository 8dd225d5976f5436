"""W3 on Tornado: n callbacks, a chain (each one adds the next) or a batch
(one callback adds all n). nsPerOp: CPU ns per callback. Each callback checks
that it runs in its turn."""
import _common
from measure import Span, emit, fail, jobs


def run(config, n):
    what = "W3 %s tornado" % config
    loop = _common.new_loop()
    span = Span()
    state = {"next": 0}
    chain = config == "chain"

    def step(i):
        if i != state["next"]:
            fail(what, "callback %d ran when %d was due" % (i, state["next"]))
        nxt = state["next"] = i + 1
        if nxt == n:
            span.stop()
            loop.stop()
        elif chain:
            loop.add_callback(step, nxt)

    def kickoff():
        span.start()
        if chain:
            loop.add_callback(step, 0)
        else:
            add_callback = loop.add_callback
            for i in range(n):
                add_callback(step, i)

    loop.add_callback(kickoff)
    loop.start()
    loop.close()
    if state["next"] != n:
        fail(what, "%d of %d callbacks ran" % (state["next"], n))
    emit(scenario="W3", peer="tornado", config=config, n=n,
         wallMs=span.wall_ms, cpuMs=span.cpu_ms, nsPerOp=span.cpu_ms * 1e6 / n)


if __name__ == "__main__":
    for config, n in jobs(["chain", "batch"], 1000000):
        run(config, n)
