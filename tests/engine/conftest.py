"""Fixtures shared by the engine tests."""

from collections.abc import Iterator

import pytest

from caseroute.engine import roster_index


@pytest.fixture
def no_index_bases() -> Iterator[None]:
    """The test starts and ends with no base index (``roster_index``'s patched-index bases)."""
    roster_index._bases.clear()
    yield
    roster_index._bases.clear()
