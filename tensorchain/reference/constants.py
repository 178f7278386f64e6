"""The constants a network makes, dense, written from their definitions.

A reshape's or a concatenation's matrix (from numpy's own reshape and
concatenation) and the shift tensor of a convolution, for the dense jets
(:mod:`tensorchain.reference.jets`) and the reshape method
(:mod:`tensorchain.reference.reshape`); not read from the code they check.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import DerivativeError
from ..language.operations import Reindex


def reindex_values(node: Reindex, sizes: Mapping[str, int]) -> np.ndarray:
    """A reshape's or concatenation's constant, dense, from numpy's own reshape
    and concatenation: ``R[g, m…]`` is the identity on the ``G`` entries with
    its columns reshaped to the members' shape (row-major), and ``E[k, i]`` the
    identity on the part stacked between the zero rows of the other parts."""
    if node.kind == "group":
        G = sizes[node.labels[0]]
        return np.eye(G).reshape(G, *(sizes[m] for m in node.labels[1:]))
    k, i = node.labels
    if node.kind == "range":  # columns start … start + J − 1 of the identity on k
        E = np.eye(sizes[k])[:, node.start : node.start + sizes[i]]
        if E.shape[1] != sizes[i]:
            raise DerivativeError(f"the reference's range runs past an axis of size {sizes[k]}")
        return E
    blocks = [np.eye(sizes[p]) if p == i else np.zeros((sizes[p], sizes[i])) for p in node.parts]
    E = np.concatenate(blocks, axis=0)
    if E.shape[0] != sizes[k]:
        raise DerivativeError(
            f"the reference's concatenation has {E.shape[0]} entries along an axis of size"
            f" {sizes[k]}"
        )
    return E


def shift_values(P: int, K: int, T: int, stride: int, padding: int) -> np.ndarray:
    """The shift tensor, written from its definition: 1 where t = s·p + k − q."""
    S = np.zeros((P, K, T))
    for p in range(P):
        for k in range(K):
            t = stride * p + k - padding
            if 0 <= t < T:
                S[p, k, t] = 1.0
    return S
