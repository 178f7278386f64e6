"""matplotlib for the pictures of planning (a plan's contraction tree, an
exploration's FLOPs against memory), loaded when a picture is asked for: it
is an optional dependency (``pip install 'tensorchain[viz]'``).
"""

from __future__ import annotations

from typing import Any

from ..errors import TensorchainError


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files, no window); a
    TensorchainError when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise TensorchainError("pictures need matplotlib: pip install 'tensorchain[viz]'") from None
    return plt
