"""Makes bench/lib importable from the Tornado benchmark programs, and gives
them a fresh IOLoop."""
import os
import sys
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))
warnings.simplefilter("ignore", DeprecationWarning)

from tornado.ioloop import IOLoop  # noqa: E402


def new_loop():
    """A new IOLoop of its own (in Tornado 6, over a new asyncio loop)."""
    return IOLoop(make_current=False)
