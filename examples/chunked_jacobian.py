"""Per-sample Jacobians larger than memory, computed chunk by chunk with dask.
Run: python examples/chunked_jacobian.py [--batch B] [--cluster] [--dask-values]

What it teaches: the per-sample Jacobians d out[s, k] / d W1[i, j] of a
two-layer network are a cotangent times the input, g[s, k, i] · x[s, j],
with δ(s, s') kept symbolic; their dense form is B·c·h·d numbers.
``J.to_dask(chunks)`` computes that dense form block by block from the
structured one, so it can be reduced (here: each sample's Frobenius norm)
on a machine, or a ``dask.distributed`` cluster, with far less memory than
the whole. Needs ``pip install 'tensorchain[dask]'`` (and ``distributed``
for ``--cluster``). With ``--dask-values`` the values are dask arrays, so
``J.array`` itself is the chunked graph (chunks a quarter of the memory
limit). The default batch is small enough for the test suite; ``--batch
4096`` makes the dense Jacobians 128 GiB.
"""

import argparse
import resource
import time

import numpy as np

import tensorchain as tc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--cluster", action="store_true", help="run on a dask LocalCluster")
    parser.add_argument(
        "--dask-values", action="store_true", help="dask arrays as values: J.array is lazy"
    )
    args, _ = parser.parse_known_args()  # (run by the tests with their own arguments)

    B, d, h, c = args.batch, 1024, 1024, 4
    net = tc.parse(
        f"dim B = {B}\ndim d = {d}\ndim h = {h}\ndim c = {c}\n"
        "input x[B, d]\nparam W1[h, d]\nparam W2[c, h]\n"
        "z1[s, i] = W1[i, j] * x[s, j]\na1 = tanh(z1)\nout[s, k] = W2[k, i] * a1[s, i]\n"
    )
    values = net.random_values(seed=0)
    values["W1"] /= np.sqrt(d)
    if args.dask_values:
        import dask.array as da

        values = {name: da.from_array(v) for name, v in values.items()}

    J = net.jacobian("out", "W1", values)  # (B, c, h, d), structured
    dense_gib = np.prod(J.shape) * 8 / 2**30
    print(f"dJ: shape {J.shape}, dense {dense_gib:.2f} GiB, stored {J.stored_entries():,} numbers")

    if args.dask_values:  # the dense array is the chunked graph: chunks a quarter of the limit
        lazy = J.dense(memory_limit=256 * 2**20)  # as J.array under that limit
    else:
        lazy = J.to_dask(chunks=(8, c, 256, d))  # 64 MiB chunks
    norms = np.sqrt((lazy**2).sum(axis=(1, 2, 3)))  # each sample's Frobenius norm

    start = time.perf_counter()
    if args.cluster:
        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="2GiB")
        with cluster, Client(cluster):
            result = norms.compute()
    else:
        result = norms.compute(scheduler="threads")
    seconds = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"computed {lazy.npartitions} chunks in {seconds:.1f} s; peak RSS here {peak_gib:.2f} GiB"
    )

    # The same norms from the structure: ‖g[s] ⊗ x[s]‖ = ‖g[s]‖ · ‖x[s]‖, no dense array.
    g = np.sqrt(np.asarray(tc.contract("s k i j, s k i j -> s", J, J).array))
    error = np.abs(result - g).max() / np.abs(g).max()
    print(f"chunked norms vs the structured contraction: max rel. diff {error:.1e}")
    assert error < 1e-10


if __name__ == "__main__":  # the cluster's worker processes import this file
    main()
