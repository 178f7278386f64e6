"""The examples :func:`tensorchain.check_gradient` tries: which dims are drawn,
the values drawn at those sizes, and the search for a failing example, with
hypothesis (which also shrinks it) when it is installed, a plain random search
and a greedy shrink otherwise.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ShapeError
from ..language.domains import drawn_note, shifted
from ..language.gather import cast_values

if TYPE_CHECKING:
    from ..language.network_like import Computing


def free_dims(net: Computing, fixed: Mapping[str, int]) -> list[str]:
    """The dims drawn: used by an input or param, not given, not computed by
    a shift, and not a member of a derived dim given (those take the spec's
    sizes or follow from the derived one)."""
    computed = {t.dims[0] for t in net.tensors.values() if t.kind == "shift"}
    computed.update(m for d in fixed if d in net.derived for m in net.derived[d][1])
    used = {d for t in net.tensors.values() if t.kind in ("input", "param") for d in t.dims}
    return [d for d in net.dims if d in used and d not in fixed and d not in computed]


def draw(
    net: Computing, of: str, sizes: dict[str, int], seed: int, dtype: np.dtype
) -> tuple[dict, str] | None:
    """Values as ``random_values`` draws them, standard normal or in each
    declared domain (``|v| + 0.5`` for those without a domain where the draw
    makes ``of`` NaN: a log or a square root of a negative number), in
    ``dtype``; None for sizes the network does not take (a kernel longer
    than its input)."""
    try:
        full = net.sizes(dims=sizes)
    except ShapeError:
        return None
    values = net.random_values(seed=seed, dims=full)
    drawn = drawn_note(net, seed)
    with np.errstate(all="ignore"):
        if not np.all(np.isfinite(net.evaluate(values, check_finite=False)[of])):
            values, drawn = shifted(net, values, seed)
    return cast_values(net, values, dtype), drawn


def _use_hypothesis() -> bool:
    """Hypothesis draws and shrinks when it is installed, except inside a
    hypothesis test (a search nested in another is refused by hypothesis)."""
    try:
        from hypothesis.control import currently_in_test_context
    except ImportError:
        return False
    return not currently_in_test_context()


def search(
    check: Callable[[dict, int], bool],
    free: list[str],
    fixed: dict[str, int],
    max_size: int,
    examples: int,
    seed: int,
    shrink: bool,
) -> tuple[dict, int, dict, int] | None:
    """The first failing (sizes, seed) and the smallest one shrunk from it, or None."""
    first: list[tuple[dict, int]] = []
    raised: list[BaseException] = []

    def fails(sizes: dict, vseed: int) -> bool:
        if not raised:
            try:
                bad = check({**fixed, **sizes}, vseed)
            except Exception as err:
                raised.append(err)
        if raised:  # the user's function raised: stop the search (one place, every time)
            raise _Stop
        if bad and not first:
            first.append(({**fixed, **sizes}, vseed))
        return bad

    if free and _use_hypothesis():
        from hypothesis import HealthCheck, Phase, find, settings
        from hypothesis import strategies as st
        from hypothesis.errors import NoSuchExample

        # the k-th draw of values, not a seed: shrinking it is a few steps to 0
        strategy = st.tuples(
            st.fixed_dictionaries({d: st.integers(1, max_size) for d in free}),
            st.integers(0, examples).map(lambda k: _value_seed(seed, k)),
        )
        phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]
        config = settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=phases,
            suppress_health_check=list(HealthCheck),
        )
        try:
            sizes, vseed = find(
                strategy, lambda ex: fails(*ex), settings=config, random=random.Random(seed)
            )
        except NoSuchExample:
            return None
        except Exception:
            if raised:
                raise raised[0] from None
            raise
        return (*first[0], {**fixed, **sizes}, vseed)
    try:
        return _plain_search(fails, free, fixed, max_size, examples, seed, shrink, first)
    except _Stop:
        raise raised[0] from None


def _value_seed(seed: int, k: int) -> int:
    """The seed of the ``k``-th draw of values."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


class _Stop(Exception):
    """The user's function raised: the search stops, and that error is raised."""


def _plain_search(fails, free, fixed, max_size, examples, seed, shrink, first):
    """Random sizes and seeds, then a greedy shrink: each dim made as small as
    it still fails, until nothing shrinks."""
    rng = np.random.default_rng(seed)
    for k in range(examples):
        sizes = {d: int(rng.integers(1, max_size + 1)) for d in free}
        vseed = _value_seed(seed, k)
        if fails(sizes, vseed):
            break
    else:
        return None
    shrinking = shrink
    while shrinking:
        shrinking = False
        for d in free:
            for smaller in sorted({1, sizes[d] // 2, sizes[d] - 1}):
                if 1 <= smaller < sizes[d] and fails({**sizes, d: smaller}, vseed):
                    sizes[d], shrinking = smaller, True
                    break
    return (*first[0], {**fixed, **sizes}, vseed)
