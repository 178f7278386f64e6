"""Convolution through shift tensors: values against direct loops, gradients
against the reshape method and central differences, and plans that never
read the shift tensor."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.language.shift import _SHIFTS, shift_tensor
from tensorchain.testing import finite_differences, max_relative_error


@given(
    st.integers(1, 5), st.integers(1, 4), st.integers(1, 6), st.integers(1, 3), st.integers(0, 3)
)
def test_the_shift_tensor_is_its_definition(P, K, T, stride, padding):
    p, k, t = np.ogrid[:P, :K, :T]
    expected = (t == stride * p + k - padding).astype(float)
    np.testing.assert_array_equal(shift_tensor(P, K, T, stride, padding), expected)


def conv1d_spec(stride, padding):
    return (
        "dim B\ndim C\ndim O\ndim T\ndim K\ndim P\n"
        "input x[B, C, T]\nparam w[O, C, K]\nparam b[O]\n"
        f"shift S[P, K, T] stride {stride} padding {padding}\n"
        "y[s, o, p] = w[o, c, k] * S[p, k, t] * x[s, c, t] + b[o]\n"
        "a = tanh(y)\nL = 0.5 * sum(a ^ 2)\n"
    )


def direct_conv1d(x, w, stride, padding):
    K = w.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding)))
    P = (xp.shape[2] - K) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], P))
    for p in range(P):
        out[:, :, p] = np.einsum("ock,sck->so", w, xp[:, :, p * stride : p * stride + K])
    return out


@given(
    dims=st.fixed_dictionaries(
        {"B": st.integers(1, 2), "C": st.integers(1, 3), "O": st.integers(1, 3)}
    ),
    T=st.integers(1, 7),
    K=st.integers(1, 4),
    stride=st.integers(1, 3),
    padding=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_conv1d_values_and_gradients(dims, T, K, stride, padding, seed):
    assume(T + 2 * padding >= K)
    net = tc.parse(conv1d_spec(stride, padding))
    vals = net.random_values(seed=seed, T=T, K=K, **dims)
    y = net.evaluate(vals)["y"]
    expected = direct_conv1d(vals["x"], vals["w"], stride, padding) + vals["b"][:, None]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    for wrt in ("w", "x"):
        g = net.grad("L", wrt, vals)[wrt]
        assert max_relative_error(g, tc.reshape_method(net, "L", wrt, vals)) < 1e-12
        assert max_relative_error(g, finite_differences(net, "L", wrt, vals)) < 1e-7
    J = net.jacobian("y", "x", vals)  # w · S with δ(B, B'): structured
    assert J.deltas == (("B", "B'"),)
    assert max_relative_error(J.array, tc.reshape_method(net, "y", "x", vals)) < 1e-12


def test_conv2d_with_two_shift_tensors():
    net = tc.parse(
        "dim B = 2\ndim C = 2\ndim O = 3\ndim H = 6\ndim W = 5\ndim K = 3\ndim L = 2\n"
        "dim P\ndim Q\ninput x[B, C, H, W]\nparam w[O, C, K, L]\n"
        "shift SH[P, K, H] stride 2 padding 1\nshift SW[Q, L, W] stride 1 padding 0\n"
        "y[s, o, p, q] = w[o, c, k, l] * SH[p, k, h] * SW[q, l, u] * x[s, c, h, u]\n"
        "C2 = sum(sigmoid(y))\n"
    )
    vals = net.random_values(seed=3)
    assert net.shape("y", **{}) == (2, 3, 3, 4)
    xp = np.pad(vals["x"], ((0, 0), (0, 0), (1, 1), (0, 0)))
    expected = np.zeros((2, 3, 3, 4))
    for p in range(3):
        for q in range(4):
            patch = xp[:, :, 2 * p : 2 * p + 3, q : q + 2]
            expected[:, :, p, q] = np.einsum("ockl,sckl->so", vals["w"], patch)
    np.testing.assert_allclose(net.evaluate(vals)["y"], expected, rtol=1e-12)
    for wrt in ("w", "x"):
        g = net.grad("C2", wrt, vals)[wrt]
        assert max_relative_error(g, tc.reshape_method(net, "C2", wrt, vals)) < 1e-12


def test_compiled_convolution_never_reads_the_shift_tensor():
    net = tc.parse(conv1d_spec(2, 1))
    dims = {"B": 4, "C": 3, "O": 5, "T": 64, "K": 5}
    for target in ("w", "x", "b"):
        program = net.compile_grad("L", [target], dims=dims).program
        shifts = {r for r, a in program.constants.items() if id(a) in _SHIFTS}
        assert not [s for s in program.steps if shifts & set(s.args)]
        # nothing of the size of S = P·K·T, let alone B·O·P·K·T
        assert max(map(np.prod, program.shapes)) < 32 * 5 * 64


def test_the_output_length_is_computed_or_checked():
    net = tc.parse(conv1d_spec(2, 1))
    assert net.sizes(B=1, C=1, O=1, T=9, K=3)["P"] == 5  # (9 + 2 − 3) // 2 + 1
    fixed = tc.parse(conv1d_spec(2, 1).replace("dim P\n", "dim P = 4\n"))
    with pytest.raises(tc.ShapeError, match=r"\(9 \+ 2 − 3\) // 2 \+ 1 = 5 positions, but P=4"):
        fixed.sizes(B=1, C=1, O=1, T=9, K=3)


def test_a_kernel_larger_than_the_padded_input_is_refused():
    net = tc.parse(conv1d_spec(1, 1))
    with pytest.raises(
        tc.ShapeError,
        match=r"shift S\[P, K, T\] \(line 10\): the kernel K=6 is larger than the padded"
        r" input T \+ 2·padding = 3 \+ 2 = 5; use a kernel of at most 5 or a padding of at"
        r" least 2",
    ):
        net.random_values(B=1, C=1, O=1, T=3, K=6)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("shift S[P, K] stride 1", r"shift S has 2 axes; it needs three"),
        ("shift S[P, K, T] stride 0", r"expected a whole number of at least 1 after 'stride'"),
        ("shift S P, K, T", r"expected '\[' after shift S"),
    ],
)
def test_malformed_shift_declarations(line, message):
    with pytest.raises(tc.SpecError, match=message):
        tc.parse(f"dim P\ndim K = 2\ndim T = 4\n{line}")
