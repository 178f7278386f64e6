"""How verification names what it compares: a derivative (``∂²C/∂W²``), an
entry of a tensor by named index (``W[n=2, m=0]``) and a tolerance
(``1e-9``), in the reports of ``net.verify`` and ``tc.check_gradient``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..presentation.notation import superscript


def derivative_title(of: str, wrts: Sequence[str]) -> str:
    """``∂C/∂W``, ``∂²C/∂W²``, ``∂²C/∂W∂b``."""
    k = len(wrts)
    if k > 1 and len(set(wrts)) == 1:
        return f"∂{superscript(k)}{of}/∂{wrts[0]}{superscript(k)}"
    return f"∂{superscript(k)}{of}/" + "".join(f"∂{w}" for w in wrts)


def tensor_entry(name: str, dims: Sequence[str], index: Sequence[int]) -> str:
    """``W[n=2, m=0]``; a scalar is its name; a dim repeated is primed, as
    in ``S[n=1, n'=0]``."""
    if not dims:
        return name
    seen: dict[str, int] = {}
    parts = []
    for d, i in zip(dims, index, strict=True):
        parts.append(f"{d}{chr(39) * seen.get(d, 0)}={i}")
        seen[d] = seen.get(d, 0) + 1
    return f"{name}[{', '.join(parts)}]"


def sci(x: float) -> str:
    """``1e-9`` rather than ``1e-09``."""
    return f"{x:.0e}".replace("e-0", "e-").replace("e+0", "e")
