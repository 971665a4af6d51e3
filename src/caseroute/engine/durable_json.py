"""JSON text that durable_rules' own parser reads correctly.

Measured: durable_rules 2.0.28 rejects exponent notation (``1e-05``, ``1E5``) with error 204,
in rule definitions and in facts alike, and Python's ``json`` writes floats that way when they
are small or large. Numbers are therefore written positionally (``0.00001``), exactly: the
shortest repr of the double, expanded, so the engine reads back the same value.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

from caseroute.rules.limits import MAX_MAGNITUDE  # a language limit: rulesets are refused first


def _number(value: float) -> str:
    text = repr(value)
    if "e" not in text and "E" not in text:
        return text
    return format(Decimal(text), "f")


_EXPONENT = re.compile(r"\d[eE][-+]?\d")
_ENCODER = json.JSONEncoder(allow_nan=False)
"""``json.dumps(value, allow_nan=False)`` without a new encoder per call (any keyword does that)."""


def to_durable_json(value: Any) -> str:
    """Serialise JSON data for durable_rules: the C encoder when its output has no exponent.

    A string that merely looks like an exponent (``"1e5"``) only sends the value down the
    exact, slower path; the result is the same.
    """
    try:
        text = _ENCODER.encode(value)
    except ValueError:  # NaN or infinity: the exact path says which value
        return _positional_json(value)
    if _EXPONENT.search(text) is None:
        return text
    return _positional_json(value)


def _positional_json(value: Any) -> str:
    """Serialise JSON data (dict, list, str, int, float, bool, None) for durable_rules.

    Args:
        value: The data; dict keys must be strings. Key order is kept (fact ids must be first).

    Returns:
        JSON text with no exponent notation.

    Raises:
        TypeError: For values JSON cannot represent.
        ValueError: For NaN or infinity.
    """
    if isinstance(value, str):
        return json.dumps(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= MAX_MAGNITUDE:
            raise ValueError(f"durable_rules cannot represent {value!r}")
        return _number(value)
    if isinstance(value, dict):
        return (
            "{"
            + ", ".join(f"{json.dumps(k)}: {_positional_json(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_positional_json(v) for v in value) + "]"
    raise TypeError(f"cannot serialise {type(value).__name__} for durable_rules")
