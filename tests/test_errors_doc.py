"""docs/errors.md shows a real message of every error class; this test
produces each message and checks the page shows it word for word."""

from pathlib import Path

import numpy as np
import pytest

import tensorchain as tc

DOC = Path(__file__).parent.parent / "docs" / "errors.md"
ARTICLE = tc.parse(tc.ARTICLE)


def spec_error():
    tc.parse("dim n = 4\ninput x[n]\nf = sigmod(x)")


def shape_error():
    tc.parse("dim n = 4\ndim m = 3\ninput x[m]\nparam v[n]\nf = x[i] * v[i]")


def values_error():
    vals = ARTICLE.random_values()
    del vals["b"]
    ARTICLE.grad("C", values=vals)


def derivative_error():
    ARTICLE.grad("a", values=ARTICLE.random_values())


def plan_error():
    tc.set_memory_limit(0)


def memory_limit_error():
    J = ARTICLE.jacobian("z", "W", ARTICLE.random_values(n=2048, m=2048))
    J.dense(memory_limit=8 * 2**30)


def non_finite_warning():
    vals = ARTICLE.random_values()
    vals["x"] = np.array([np.inf, 0.0, 0.0])
    ARTICLE.grad("C", values=vals, strict=True)


EXAMPLES = [
    (tc.SpecError, spec_error),
    (tc.ShapeError, shape_error),
    (tc.ValuesError, values_error),
    (tc.DerivativeError, derivative_error),
    (tc.PlanError, plan_error),
    (tc.MemoryLimitError, memory_limit_error),
    (tc.ValuesError, non_finite_warning),
]


def message(make) -> str:
    with pytest.raises(tc.TensorchainError) as info:
        make()
    return str(info.value)


@pytest.mark.parametrize(("cls", "make"), EXAMPLES, ids=[m.__name__ for _, m in EXAMPLES])
def test_the_page_shows_each_real_message(cls, make):
    with pytest.raises(cls) as info:
        make()
    assert type(info.value) is cls
    text = DOC.read_text(encoding="utf-8")
    assert str(info.value) in text, f"docs/errors.md is missing:\n{info.value}"


if __name__ == "__main__":  # print the messages, to paste into docs/errors.md
    for cls, make in EXAMPLES:
        print(f"## {cls.__name__} ({make.__name__})\n\n```\n{message(make)}\n```\n")
