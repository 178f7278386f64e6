"""Building: the cyclic garbage collector paused while a network or a program
is built.

Parsing a network and tracing its first derivative allocate millions of
small objects that all stay alive (statements, labeled tensors, steps).
Python's collector scans the whole heap each time enough survivors have
piled up: on an 8,000-statement network that was more than half of the
first call. Nothing built there is garbage until the build is over, so the
collector is paused for its duration and runs as usual afterwards.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_depth = 0  # builds under way, in every thread
_was_enabled = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic collector inside the block (nested and concurrent
    blocks allowed); it is enabled again when the last block ends, if it was
    enabled when the first began."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
