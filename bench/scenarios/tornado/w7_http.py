"""W7 on Tornado's HTTPServer: a request callback (no Application) that answers
every request with "hello world" (Tornado adds Content-Length, Date and
Server), loaded by wrk as bench/lib/wrk.ts does it: the pre-flight with
lib/w7-check.lua, a warm-up and then the measured run with lib/w7-load.lua,
each ended by SIGINT. wrk waits in a thread of this process while the loop serves on the
main thread; the row's CPU is this process's (wrk is a child)."""
import json
import os
import re
import subprocess
import threading

import _common
from measure import Span, emit, fail, jobs
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders, ResponseStartLine
from tornado.netutil import bind_sockets

LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib")
CHECK_MS = 200
BODY = b"hello world"


def run_wrk(what, script, connections, port, ms):
    """Runs wrk for `ms`, ended by SIGINT from coreutils' timeout (a Python timer
    would wait for the GIL of the busy server thread); returns its JSON line."""
    args = ["timeout", "--preserve-status", "-s", "INT", "%.3f" % (ms / 1000),
            "wrk", "-t1", "-c%d" % connections, "-d%ds" % (-(-ms // 1000) + 5), "--timeout", "2s",
            "-s", os.path.join(LIB, script), "http://127.0.0.1:%d/" % port]
    try:
        child = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        fail(what, "wrk: %s" % e)
    line = next((l for l in child.stdout.decode().split("\n") if l.startswith("{")), None)
    if child.returncode != 0 or line is None:
        fail(what, "wrk ended with %s and no result: %s" % (child.returncode, (child.stderr or child.stdout).decode().strip()[-300:]))
    return json.loads(line)


def errors_of(r):
    e = {k: r[k] for k in ("connect", "read", "write", "status", "timeout")}
    return "wrk counted errors %s" % json.dumps(e) if any(e.values()) else None


def run(config, n):
    what = "W7 %s tornado" % config
    connections = int(re.match(r"^(\d+)conns?$", config).group(1))
    loop = _common.new_loop()
    served = [0]

    def handle(request):
        served[0] += 1
        conn = request.connection
        headers = HTTPHeaders({"Content-Type": "text/plain", "Content-Length": str(len(BODY))})
        conn.write_headers(ResponseStartLine("HTTP/1.1", 200, "OK"), headers, BODY)
        conn.finish()

    result = {}

    def client(port):
        try:
            check = run_wrk(what + " (pre-flight)", "w7-check.lua", min(connections, 4), port, CHECK_MS)
            warm = run_wrk(what + " (warm-up)", "w7-load.lua", connections, port, min(1000, round(n / 3)))
            span = Span()
            span.start()
            r = run_wrk(what, "w7-load.lua", connections, port, n)
            span.stop()
            result.update(check=check, warm=warm, load=r, span=span)
        finally:
            loop.add_callback(loop.stop)

    async def serve():
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(handle, xheaders=False)
        server.add_sockets(sockets)
        port = sockets[0].getsockname()[1]
        threading.Thread(target=client, args=(port,), daemon=True).start()
        return server

    server = loop.run_sync(serve)
    loop.start()
    server.stop()
    loop.run_sync(server.close_all_connections)
    loop.close(all_fds=True)

    check, warm, r, span = result["check"], result["warm"], result["load"], result["span"]
    if check["bad"]:
        fail(what, "pre-flight: %d of %d responses wrong, the first: %s" % (check["bad"], check["good"] + check["bad"], check["first"]))
    if check["good"] < 3 or check["good"] != check["requests"]:
        fail(what, "pre-flight: %d responses checked, wrk counted %d" % (check["good"], check["requests"]))
    for label, x in (("pre-flight: ", check), ("warm-up: ", warm), ("", r)):
        errors = errors_of(x)
        if errors:
            fail(what, label + errors)
    if r["requests"] <= 0:
        fail(what, "wrk completed no request")
    got = check["good"] + warm["requests"] + r["requests"]
    if served[0] < got:
        fail(what, "the server answered %d requests, wrk got %d responses" % (served[0], got))
    emit(scenario="W7", peer="tornado", config=config, n=n, connections=connections,
         wallMs=r["durationUs"] / 1000, cpuMs=span.cpu_ms, nsPerOp=span.cpu_ms * 1e6 / r["requests"],
         requestsPerSec=r["requests"] / (r["durationUs"] / 1e6), requests=r["requests"],
         p50Us=r["p50Us"], p99Us=r["p99Us"], checked=check["good"])


if __name__ == "__main__":
    for config, n in jobs(["1conn", "64conns"], 3000):
        run(config, n)
