"""Array libraries and resources: the bottom layer, with ``errors``.

Owns the dispatch to numpy, torch, JAX, CuPy and dask (``backend``), the
trace of array operations that compiled programs replay (``trace``: every
array operation tensorchain runs goes through ``trace.apply``), the bounds
and the memory limit (``limits``), numpy's warning state (``quiet``),
bounded thread-safe caches (``cache``) and the collector paused while a
network is built (``building``).

May import: ``tensorchain.errors`` only.
"""
