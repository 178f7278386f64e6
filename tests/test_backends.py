"""Values from torch, JAX and dask: every derivative computed with that
library's own operations, returned as its arrays, and equal to numpy's.

Each installed library runs; the others are skipped (the `dask` extra is in
the test extra, torch and jax are optional). The reference is the numpy
computation on the same numbers, itself checked against the reshape method
and finite differences in the other suites; the reshape method is used here
directly for the drawn networks' Jacobians.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.strategies import networks
from tensorchain.testing import max_relative_error

EXAMPLES = Path(__file__).parent.parent / "examples"


def _installed(library: str) -> bool:
    if importlib.util.find_spec(library) is None:
        return False
    return library == "jax" or importlib.util.find_spec("array_api_compat") is not None


LIBRARIES = [
    pytest.param(lib, marks=pytest.mark.skipif(not _installed(lib), reason=f"{lib} not installed"))
    for lib in ("torch", "jax", "dask")
]


def convert(library: str, array: np.ndarray):
    """``array`` as an array of ``library`` (float64 kept)."""
    if library == "torch":
        import torch

        return torch.from_numpy(np.array(array))  # a C-ordered copy, 0-d kept
    if library == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        return jax.numpy.asarray(array)
    import dask.array as da

    return da.from_array(array, chunks=2)  # several chunks on every axis longer than 2


def back(library: str, result) -> np.ndarray:
    """A result as numpy, after checking it is ``library``'s kind of array."""
    kinds = {"torch": "torch", "jax": "jax", "dask": "dask"}
    assert type(result).__module__.split(".")[0].replace("jaxlib", "jax") == kinds[library], type(
        result
    )
    if library == "dask":
        return np.asarray(result.compute())
    if library == "torch":
        return result.numpy()
    return np.asarray(result)


def on(library: str, values: dict) -> dict:
    return {k: convert(library, np.asarray(v)) for k, v in values.items()}


TIGHT = 1e-10  # float64 on both sides; only summation orders differ


@pytest.mark.parametrize("library", LIBRARIES)
@settings(max_examples=max(10, settings.default.max_examples // 5))  # every library, so fewer
@given(net=networks(max_layers=3, max_size=3), seed=st.integers(0, 2**16))
def test_drawn_networks_agree_with_numpy(library, net, seed):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    other = on(library, vals)

    forward, expected = network.evaluate(other), network.evaluate(vals)
    eager = network.forward(other)  # not compiled: constants meet the values' arrays
    for name in network.outputs:
        assert max_relative_error(back(library, forward[name]), expected[name]) < TIGHT, name
        assert max_relative_error(back(library, eager.values[name]), expected[name]) < TIGHT

    wrt = [*network.params, *network.inputs]
    grads, expected = network.grad(net.of, wrt=wrt, values=other), network.grad(net.of, wrt, vals)
    for w in wrt:
        assert max_relative_error(back(library, grads[w]), expected[w]) < TIGHT, w
    uncompiled = network.derivatives(net.of, wrt[:1], eager).jacobians[wrt[0]].array
    assert max_relative_error(back(library, uncompiled), expected[wrt[0]]) < TIGHT

    for w in wrt[:2]:
        J = network.jacobian(net.of, wrt=w, values=other).array
        ref = tc.reshape_method(network, net.of, w, vals)
        assert max_relative_error(back(library, J), ref) < TIGHT, w
    if network.params:
        w = network.params[0]
        H = network.hessian(net.of, w, other).array
        assert max_relative_error(back(library, H), network.hessian(net.of, w, vals).array) < TIGHT


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("spec", ["conv1d.tc", "attention.tc", "softmax_classifier.tc"])
def test_examples_on_each_library(library, spec):
    """Convolution (gather and scatter), softmax and attention layers."""
    network = tc.parse((EXAMPLES / spec).read_text())
    vals = network.random_values(seed=1)
    other = on(library, vals)
    of = network.outputs[-1]
    for w in network.params[:2]:
        J = network.jacobian(of, w, other).array
        ref = tc.reshape_method(network, of, w, vals)
        assert max_relative_error(back(library, J), ref) < TIGHT, w


@pytest.mark.parametrize("library", LIBRARIES)
def test_products_plans_and_compiled_calls(library):
    dp = tc.parse((EXAMPLES / "dp_sgd.tc").read_text())
    vals = dp.random_values(seed=2, B=6)
    other = on(library, vals)
    norms = dp.per_sample_grad_norms("L", values=other)
    assert max_relative_error(back(library, norms), dp.per_sample_grad_norms("L", values=vals)) < (
        TIGHT
    )
    clipped = dp.clipped_grad("L", values=other, max_norm=0.3)["W1"]
    expected = dp.clipped_grad("L", values=vals, max_norm=0.3)["W1"]
    assert max_relative_error(back(library, clipped), expected) < TIGHT

    ntk = tc.parse((EXAMPLES / "ntk.tc").read_text())
    vals = ntk.random_values(seed=3)
    K = ntk.ntk("out", values=on(library, vals)).array
    assert max_relative_error(back(library, K), ntk.ntk("out", values=vals).array) < TIGHT

    net = tc.parse(tc.ARTICLE)
    vals = net.random_values(seed=4, n=4, m=3)
    other = on(library, vals)
    v = np.random.default_rng(0).standard_normal((4, 3))
    hvp = net.hvp("C", "W", convert(library, v), other)
    assert max_relative_error(back(library, hvp), net.hvp("C", "W", v, vals)) < TIGHT
    plan = net.plan("a", "x", n=4, m=3)
    assert max_relative_error(back(library, plan(other).array), plan(vals).array) < TIGHT
    grad = net.compile_grad("C", dims={"n": 4, "m": 3})  # traced without values
    assert max_relative_error(back(library, grad(other)["W"]), grad(vals)["W"]) < TIGHT


@pytest.mark.parametrize("library", [p for p in LIBRARIES if p.values[0] != "dask"])
def test_float32_stays_float32(library):
    net = tc.parse(tc.ARTICLE)
    vals = {k: v.astype(np.float32) for k, v in net.random_values(seed=5, n=5, m=4).items()}
    g = net.grad("C", values=on(library, vals))["W"]
    assert str(g.dtype).endswith("float32")
    np.testing.assert_allclose(back(library, g), net.grad("C", values=vals)["W"], rtol=1e-5)


def test_dask_values_give_a_lazy_chunked_dense_result():
    """With dask values ``.array`` is a dask graph of blocks computed from the
    structured form: a memory limit far below the dense size does not apply
    to it, and each block is computed alone."""
    pytest.importorskip("dask")
    pytest.importorskip("array_api_compat")
    import dask.array as da

    net = tc.parse(tc.ARTICLE)
    vals = net.random_values(seed=6, n=12, m=10)
    other = on("dask", vals)
    tc.set_memory_limit(4_000)  # bytes; the Hessian by W is 115 KB, the Jacobian 11.5 KB
    try:
        H = net.hessian("C", "W", other).array
        J = net.jacobian("a", "W", other).array
    finally:
        tc.set_memory_limit(None)
    for lazy in (H, J):
        assert isinstance(lazy, da.Array)
        assert lazy.npartitions > 1
        assert max(np.prod(shape) for shape in _block_shapes(lazy)) * 8 <= 1_000
    assert max_relative_error(J.compute(), tc.reshape_method(net, "a", "W", vals)) < TIGHT
    assert max_relative_error(H.compute(), net.hessian("C", "W", vals).array) < TIGHT


def _block_shapes(array):
    import itertools

    return itertools.product(*array.chunks)


def test_a_missing_array_api_compat_names_the_extra_and_jax_needs_none(monkeypatch):
    import sys

    from tensorchain.arrays import backend

    for name in [m for m in sys.modules if m.startswith("array_api_compat")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "array_api_compat", None)  # import fails
    backend.xp_of.cache_clear()
    try:
        with pytest.raises(tc.ValuesError, match=r"pip install 'tensorchain\[torch\]'"):
            backend.xp_of("torch")
        if _installed("jax"):
            net = tc.parse(tc.ARTICLE)
            vals = net.random_values(seed=8, n=3, m=2)
            g = net.grad("C", values=on("jax", vals))["W"]
            assert max_relative_error(back("jax", g), net.grad("C", values=vals)["W"]) < TIGHT
    finally:
        backend.xp_of.cache_clear()


@pytest.mark.parametrize("library", [p for p in LIBRARIES if p.values[0] != "dask"])
def test_uncompiled_calls_blocks_and_contractions(library):
    """The forward pass, local Jacobians and the chain rule run eagerly (no
    compiled program); a block of a dense result is the library's array."""
    net = tc.parse(tc.ARTICLE)
    vals = net.random_values(seed=7, n=4, m=3)
    other = on(library, vals)
    forward = net.forward(other)
    local = net.local_jacobians("z", forward)["W"].array
    expected = net.local_jacobians("z", net.forward(vals))["W"].array
    assert max_relative_error(back(library, local), expected) < TIGHT
    dW = net.derivatives("C", ["W"], forward).jacobians["W"].array
    assert max_relative_error(back(library, dW), net.grad("C", "W", vals)["W"]) < TIGHT

    J = net.jacobian("a", "W", other)
    dense = tc.reshape_method(net, "a", "W", other)  # the reference takes any values
    block = J.block([(1, 3), (0, 4), (1, 3)])
    assert max_relative_error(back(library, block), dense[1:3, :, 1:3]) < TIGHT
    y = convert(library, vals["y"])
    projected = tc.contract("n n' m, n -> n' m", J, y).array
    assert max_relative_error(
        back(library, projected), np.einsum("abc,a->bc", dense, vals["y"])
    ) < (TIGHT)


def test_inside_jax_jit_and_under_jax_grad():
    """JAX traces tensorchain's operations like its own: a derivative
    compiled by jax.jit, and jax.grad of a tensorchain forward pass."""
    if not _installed("jax"):
        pytest.skip("jax not installed")
    import jax

    net = tc.parse(tc.ARTICLE)
    vals = net.random_values(seed=9, n=4, m=3)
    other = on("jax", vals)
    jitted = jax.jit(lambda v: net.hessian("C", "W", v).array)
    assert max_relative_error(
        back("jax", jitted(other)), tc.reshape_hessian(net, "C", "W", vals)
    ) < (TIGHT)
    by_jax = jax.grad(lambda W: net.evaluate({**other, "W": W})["C"])(other["W"])
    assert max_relative_error(back("jax", by_jax), tc.reshape_method(net, "C", "W", vals)) < TIGHT


def test_a_dtype_numpy_lacks_is_refused_by_name():
    pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    import torch

    net = tc.parse(tc.ARTICLE)
    vals = {
        k: torch.from_numpy(np.array(v)).to(torch.bfloat16) for k, v in net.random_values().items()
    }
    with pytest.raises(tc.ValuesError, match=r"x has dtype torch.bfloat16; .* e.g. to float32"):
        net.grad("C", values=vals)


def test_a_strided_convolution_on_dask_values():
    """A window gather with stride 2 on dask values (once: 'total size of new
    array must be unchanged', dask's take losing the length of a dask index)."""
    if not _installed("dask"):
        pytest.skip("dask not installed")
    net = tc.parse(
        "dim n = 2\ninput x[n]\ndim K = 1\ndim P\nshift S[P, K, n] stride 2 padding 0\n"
        "param w[K]\nh[p] = w[q] * S[p, q, t] * x[t]\nL = sum(square(h) + h)\n"
    )
    vals = net.random_values(seed=3)
    g = net.grad("L", values=on("dask", vals))["w"]
    assert max_relative_error(back("dask", g), tc.reshape_method(net, "L", "w", vals)) < TIGHT


def test_contract_under_jax_jit():
    """A JAX tracer as an operand of tc.contract (once np.asarray'd: a raw
    TracerArrayConversionError)."""
    if not _installed("jax"):
        pytest.skip("jax not installed")
    import jax

    net = tc.parse(tc.ARTICLE)
    vals = net.random_values(seed=1)
    H = net.hessian("C", "W", vals)
    v = np.arange(12.0).reshape(4, 3)
    f = jax.jit(lambda u: tc.contract("i j k l, k l -> i j", H, u).array)
    expected = np.einsum("ijkl,kl->ij", H.array, v)
    assert max_relative_error(back("jax", f(on("jax", {"v": v})["v"])), expected) < TIGHT


@pytest.mark.parametrize("library", LIBRARIES)
def test_matrix_functions_on_other_libraries(library):
    """inv, solve, det, logdet, cholesky and trace with each library's own
    linear algebra (dask: whole matrices per block), batched, first and
    second order, against numpy values."""
    net = tc.parse(
        "dim s = 2\ndim n = 3\nparam X[s, n, n]\ninput b[s, n]\n"
        "Y[t, i, j] = inv(X[t, i, j], i, j)\nx[t, j] = solve(X[t, i, j], b[t, i], i, j)\n"
        "C[t, i, j] = cholesky(X[t, i, j], i, j)\nd[t] = logdet(X[t, i, j], i, j)\n"
        "e[t] = det(X[t, i, j], i, j)\nr[t] = trace(Y[t, i, j], i, j)\n"
        "L = sum(Y ^ 2) + sum(x ^ 2) + sum(C ^ 2) + sum(d) + sum(e) + sum(r)\n"
    )
    rng = np.random.default_rng(2)
    q = np.linalg.qr(rng.standard_normal((2, 3, 3)))[0]
    vals = {"X": q @ (np.eye(3) * [0.8, 1.3, 2.0]) @ np.swapaxes(q, 1, 2)}
    vals["b"] = rng.standard_normal((2, 3))
    other = on(library, vals)
    g = net.grad("L", "X", other)["X"]
    assert max_relative_error(back(library, g), net.grad("L", "X", vals)["X"]) < TIGHT
    H = net.hessian("L", "X", other).array
    assert max_relative_error(back(library, H), net.hessian("L", "X", vals).array) < TIGHT
