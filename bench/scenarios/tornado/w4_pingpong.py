"""W4 on Tornado: `pairs` socketpairs; one end of each echoes what it reads,
the other sends a 64-byte message, waits for all 64 bytes of its echo, checks
them, and sends the next, until n round trips are done across all pairs. Both
ends are READ handlers (IOLoop.add_handler) on one loop. Reports round trips
per second of wall time; nsPerOp is CPU ns per round trip."""
import re
import socket

import _common
from _common import IOLoop
from measure import Span, emit, fail, jobs

MESSAGE_SIZE = 64


def fill_message(buf, pair, rnd):
    """The message layout of bench/lib/pingpong.ts."""
    buf[0:4] = (rnd & 0xFFFFFFFF).to_bytes(4, "little")
    buf[4:6] = (pair & 0xFFFF).to_bytes(2, "little")
    for j in range(6, MESSAGE_SIZE):
        buf[j] = (j * 13 + pair) & 0xFF


def run(config, n):
    what = "W4 %s tornado" % config
    pairs = int(re.match(r"^(\d+)pairs?$", config).group(1))
    rounds = n // pairs
    loop = _common.new_loop()
    span = Span()
    state = {"finished": 0, "total": 0}
    socks = []
    senders = []

    def echo(sock, events):
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        if data:
            w = sock.send(data)
            if w != len(data):
                fail(what, "echo wrote %d of %d bytes" % (w, len(data)))

    def make_pair(p):
        client, server = socket.socketpair()
        client.setblocking(False)
        server.setblocking(False)
        socks.extend((client, server))
        sent = bytearray(MESSAGE_SIZE)
        got = bytearray()
        rnd = [0]

        def send():
            fill_message(sent, p, rnd[0])
            w = client.send(sent)
            if w != MESSAGE_SIZE:
                fail(what, "pair %d wrote %d of %d bytes" % (p, w, MESSAGE_SIZE))

        def on_echo(sock, events):
            try:
                data = client.recv(MESSAGE_SIZE - len(got))
            except BlockingIOError:
                return
            if not data:
                fail(what, "pair %d: the echo side closed" % p)
            got.extend(data)
            if len(got) < MESSAGE_SIZE:
                return
            if got != sent:
                fail(what, "pair %d round %d: the echo differs from the message" % (p, rnd[0]))
            del got[:]
            rnd[0] += 1
            state["total"] += 1
            if rnd[0] < rounds:
                send()
            else:
                state["finished"] += 1
                if state["finished"] == pairs:
                    span.stop()
                    loop.stop()

        loop.add_handler(server, echo, IOLoop.READ)
        loop.add_handler(client, on_echo, IOLoop.READ)
        senders.append(send)

    for p in range(pairs):
        make_pair(p)

    def kickoff():
        span.start()
        for send in senders:
            send()

    loop.add_callback(kickoff)
    loop.start()
    for s in socks:
        loop.remove_handler(s)
        s.close()
    loop.close()
    total = rounds * pairs
    if state["total"] != total:
        fail(what, "%d of %d round trips" % (state["total"], total))
    emit(scenario="W4", peer="tornado", config=config, n=total, pairs=pairs,
         wallMs=span.wall_ms, cpuMs=span.cpu_ms, nsPerOp=span.cpu_ms * 1e6 / total,
         roundTripsPerSec=total / (span.wall_ms / 1000))


if __name__ == "__main__":
    for config, n in jobs(["1pair", "100pairs"], 200000):
        run(config, n)
