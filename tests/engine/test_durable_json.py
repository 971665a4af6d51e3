import json

import pytest

from caseroute.engine.durable_json import to_durable_json


@pytest.mark.parametrize("value", [1e-05, -2.5e-07, 1e16, 1.5e17, 0.1, -0.0, 123.456, 7])
def test_numbers_are_positional_and_exact(value: float) -> None:
    """No exponent (durable_rules rejects it, error 204) and the same double reads back."""
    text = to_durable_json(value)
    assert "e" not in text.lower()
    assert json.loads(text) == value


def test_structure_and_key_order_are_kept() -> None:
    """Objects keep key order (the fact id must come first); strings are JSON-escaped."""
    data = {"id": "c", "s": 'a"b\u00fc', "l": [True, None, 1e-05], "n": {"x": False}}
    text = to_durable_json(data)
    assert text.startswith('{"id": "c"')
    assert json.loads(text) == data


def test_non_finite_numbers_are_refused() -> None:
    """NaN, infinity and magnitudes beyond int64 have no form durable_rules reads back."""
    for value in (float("nan"), float("inf"), 1.5e300):
        with pytest.raises(ValueError, match="cannot represent"):
            to_durable_json(value)
