"""Array libraries and resources: the lowest layer of code (below it only
``errors``, the version and the built-in specs).

Owns the dispatch to numpy, torch, JAX, CuPy and dask (``backend``), the
trace of array operations that compiled programs replay (``trace``: every
array operation tensorchain runs goes through ``trace.apply``), the bounds
and the memory limit (``limits``), numpy's warning state (``quiet``),
bounded thread-safe caches (``cache``) and the collector paused while a
network is built (``building``).

May import: ``errors`` only.
"""
