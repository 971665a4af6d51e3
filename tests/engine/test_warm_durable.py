"""durable_rules' fact texts built with less CPU: the same text as before for every value."""

import json

import pytest

from caseroute.engine import durable
from caseroute.engine.durable import INIT_FACT_ID
from caseroute.engine.durable_json import to_durable_json


def test_init_fact_is_the_encoded_init_dict_and_built_once_per_sid() -> None:
    """A sid's init fact equals to_durable_json of the init dict; the second call reuses it."""
    first = durable._init_fact("s7")
    assert first == '{"id": "__init", "t": "__init", "sid": "s7"}'
    assert to_durable_json({"id": INIT_FACT_ID, "t": "__init", "sid": "s7"}) == first
    assert durable._init_fact("s7") is first


@pytest.mark.parametrize(
    "value",
    [
        {"id": "c", "sid": "s0", "t": "case", "urgency": "urgent", "age": 12.5, "flags": ["a"]},
        {"text": "café ✓", "n": 3, "none": None, "yes": True},
    ],
    ids=["fact", "unicode"],
)
def test_plain_values_encode_as_json_dumps_did(value: dict[str, object]) -> None:
    """The kept encoder writes what json.dumps(allow_nan=False) wrote (ASCII escapes, spaces)."""
    assert json.dumps(value, allow_nan=False) == to_durable_json(value)


def test_exponents_and_nan_still_take_the_exact_path() -> None:
    """1e-07 is written positionally; NaN is still refused by the exact path."""
    assert to_durable_json({"x": 1e-7}) == '{"x": 0.0000001}'
    with pytest.raises(ValueError, match="cannot represent"):
        to_durable_json({"x": float("nan")})
