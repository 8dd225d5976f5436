"""The one pseudo-random generator of the Python benchmark programs:
mulberry32, as in bench/lib/prng.ts and bench/peers/cloop.c (same seed, same
sequence; `npm run bench -- --check` compares their first outputs)."""
import sys

SEED = 0x2545F491
EQUAL_DELAY_MS = 50
M32 = 0xFFFFFFFF


def mulberry32(seed):
    """Returns a generator function of unsigned 32-bit integers."""
    state = [seed & M32]

    def next_u32():
        a = (state[0] + 0x6D2B79F5) & M32
        state[0] = a
        t = ((a ^ (a >> 15)) * (a | 1)) & M32
        t ^= (t + ((t ^ (t >> 7)) * (t | 61))) & M32
        return (t ^ (t >> 14)) & M32

    return next_u32


def delays_ms(n, config):
    """Whole-millisecond delays: uniform over 0..1000, or all EQUAL_DELAY_MS."""
    if config == "equal":
        return [EQUAL_DELAY_MS] * n
    if config != "random":
        raise ValueError("unknown timer configuration %r" % config)
    nxt = mulberry32(SEED)
    return [(nxt() * 1001) >> 32 for _ in range(n)]


if __name__ == "__main__":
    nxt = mulberry32(SEED)
    k = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    print(" ".join(str(nxt()) for _ in range(k)))
