"""Benchmarks: ``python -m benchmarks`` (see ``docs/benchmarks.md``)."""

import os


def pin_one_core() -> None:
    """Pin this process to one CPU core and every BLAS and XLA pool to one
    thread. Must run before numpy, jax or torch is imported."""
    for var in (
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    ):
        os.environ[var] = "1"
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
