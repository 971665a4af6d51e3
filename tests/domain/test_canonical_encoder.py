"""canonical_json through its kept C encoder gives exactly the text json.dumps gave."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caseroute.domain import fingerprint
from caseroute.domain.fingerprint import canonical_json


def _dumps(value: object) -> str:
    """canonical_json as it was defined before the kept encoder (json.dumps per call)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_any_json_value_encodes_as_json_dumps_encodes_it(value: Any) -> None:
    """Nested dicts and lists of every JSON scalar, any text: the same characters."""
    assert canonical_json(value) == _dumps(value)


def test_edge_values_encode_as_json_dumps_encodes_them() -> None:
    """A bare string, escapes and astral text, int keys, tuples, -0.0 and huge ints."""
    values: list[Any] = [
        'na\u00efve "q" \\ \n \u2028 \U0001f600',
        {2: "b", 1: "a"},
        (1, "x", None),
        {"f": -0.0, "g": 1e300, "i": 10**30},
        True,
        [],
        {},
    ]
    assert [canonical_json(v) for v in values] == [_dumps(v) for v in values]


@pytest.mark.parametrize("bad", [math.nan, math.inf, [-math.inf]])
def test_a_non_finite_float_is_refused_as_before(bad: Any) -> None:
    """NaN and infinities raise ValueError, as json.dumps(allow_nan=False) does."""
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        canonical_json(bad)


def test_a_value_json_cannot_encode_raises_the_same_type_error() -> None:
    """An object with no JSON form: TypeError naming its type, as before."""
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        canonical_json({"s": {1}})


def test_without_a_c_encoder_canonical_json_is_json_dumps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where json has no C encoder, none is kept and json.dumps encodes: the same text."""
    monkeypatch.setattr(fingerprint, "c_make_encoder", None)
    assert fingerprint._kept_encoder() is None
    monkeypatch.setattr(fingerprint, "_ENCODE", None)
    value = {"b": [1.5, None], "a": "\u00e9"}
    assert canonical_json(value) == _dumps(value)
