"""``st.sampled_from`` built once per pool, for ``@st.composite`` functions that draw often."""

from collections.abc import Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st

T = TypeVar("T")

_BUILT: dict[tuple[tuple[type, str], ...], st.SearchStrategy[Any]] = {}


def sampled(pool: Sequence[T]) -> st.SearchStrategy[T]:
    """``st.sampled_from(pool)``, built once per distinct pool: the same values, drawn alike.

    ``st.sampled_from`` of a list is a new object on every call, and Hypothesis's caching and
    validation of each new strategy was most of some property tests' time. Pools are told apart
    by each value's type and repr, not by equality, so 0, 0.0, -0.0 and False stay apart. A value
    drawn is the first such pool's object: pass no object whose identity matters (an example's
    own containers, to be changed in place).
    """
    key = tuple((type(value), repr(value)) for value in pool)
    strategy = _BUILT.get(key)
    if strategy is None:
        strategy = _BUILT[key] = st.sampled_from(pool)
    return strategy
