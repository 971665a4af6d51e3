"""The shared reader core: each check's words, and the table of identifier shapes."""

from __future__ import annotations

from datetime import date

import pytest

from caseroute.domain.codec import parse_roster
from caseroute.domain.reader import (
    FLAG,
    IDENTIFIER,
    JURISDICTION,
    NAME,
    describe_type,
    describe_value,
    near_miss,
    not_one_of,
    number_problem,
    quoted_number_tip,
    read_day,
    text_problem,
    too_long,
    unknown_key_tip,
)
from caseroute.testing import agent_data, roster_data


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        ("ab", "'ab'"),
        ("x" * 50, f"{'x' * 40!r}… (50 characters)"),
        (True, "true"),
        (False, "false"),
        (1.5, "1.5"),
        (7, "7"),
        (10**40, "an integer too large to show"),
        ([1, 2, 3], "a list of 3 item(s)"),
        ((1,), "a list of 1 item(s)"),
        ({"a": 1}, "an object"),
        ({1, 2}, "set"),
    ],
)
def test_describe_value(value: object, expected: str) -> None:
    """A value is shown short, strings quoted and cut, booleans as JSON and YAML write them."""
    assert expected == describe_value(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null (an empty value)"),
        (False, "boolean false"),
        (3, "number 3"),
        (2.5, "number 2.5"),
        ("x", "string 'x'"),
        ([], "a list"),
        ({}, "an object"),
        (b"x", "bytes"),
    ],
)
def test_describe_type(value: object, expected: str) -> None:
    """What kind of value was sent, in one vocabulary for JSON and YAML."""
    assert expected == describe_type(value)


def test_bounded_pattern_keeps_the_shape_and_adds_the_length() -> None:
    """``bounded(n)`` accepts the shape up to n characters, and nothing the shape refuses."""
    bounded = NAME.bounded(4)
    assert [bool(bounded.fullmatch(text)) for text in ("a", "ab-c", "abcde", "Ab", "ab\n")] == [
        True,
        True,
        False,
        False,
        False,
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("US-TX", True),
        ("GB-ENG", True),
        ("US", True),
        ("us-tx", False),
        ("US-TX\n", False),
        ("U-TX", False),
    ],
)
def test_jurisdiction_shape(text: str, expected: bool) -> None:
    """The one jurisdiction shape: ISO 3166 country, then subdivisions of 1-3 characters."""
    assert expected == bool(JURISDICTION.regex.fullmatch(text))


def test_near_miss_skips_long_and_non_text() -> None:
    """A near miss is found for short text only: never for long text or a non-string."""
    choices = ["urgency", "intent"]
    assert [
        near_miss("urgncy", choices),
        near_miss("u" * 65, choices),
        near_miss(5, choices),
        near_miss("zzzz", choices),
    ] == ["urgency", None, None, None]


def test_near_miss_finds_two_neighbouring_letters_swapped() -> None:
    """`di` for `id` (difflib rates it 0.5, below its cutoff); not a swap of distant letters."""
    choices = ["id", "when", "then"]
    assert [
        near_miss("di", choices),
        near_miss("nhet", choices),
        near_miss("id", ["di"]),
        near_miss("ab", ["ba", "ab"]),
        near_miss("xy", ["yz"]),
    ] == ["id", None, "di", "ab", None]


def test_unknown_key_tip() -> None:
    """A near miss is suggested in backticks; otherwise the allowed keys are listed."""
    assert [
        unknown_key_tip("nmae", ["name", "min_level"]),
        unknown_key_tip(42, ["name", "min_level"]),
    ] == [" (did you mean `name`?)", " (allowed: name, min_level)"]


def test_not_one_of_with_and_without_a_hint() -> None:
    """An enum miss lists the choices and, when there is one, a value hint in quotes."""
    assert [not_one_of("c", ["a", "b"], "a"), not_one_of(5, ["a", "b"], None)] == [
        "must be one of a, b; got 'c' (did you mean 'a'?)",
        "must be one of a, b; got 5",
    ]


def test_too_long_names_the_setting_only_when_there_is_one() -> None:
    """Over the limit: the count, the limit, the flag that sets it (if any), a short prefix."""
    text = "y" * 45
    start = repr("y" * 40)
    assert [
        None,
        f"has 45 characters; the limit is 44; it starts {start}…",
        f"has 45 characters; the limit is 44 (configurable: --max-id-chars); it starts {start}…",
    ] == [
        too_long(text, 45),
        too_long(text, 44),
        too_long(text, 44, "max_id_chars"),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", " (write the number without quotes)"),
        ("five", ""),
        ("5" * 65, ""),
        (5, ""),
    ],
)
def test_quoted_number_tip(value: object, expected: str) -> None:
    """Only a short string that reads as a number gets the "without quotes" tip."""
    assert expected == quoted_number_tip(value)


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        (3, {"integer": True, "low": 0, "high": 10}, None),
        (2.5, {}, None),
        (True, {}, "must be a number, got boolean true"),
        (2.5, {"integer": True}, "must be an integer, got number 2.5"),
        (
            "7",
            {"integer": True},
            "must be an integer, got string '7' (write the number without quotes)",
        ),
        (float("nan"), {}, "must be a finite number within ±1e+15, got nan"),
        (10**16, {}, "must be a finite number within ±1e+15, got 10000000000000000"),
        (-2, {"low": -1.0, "high": 1.0}, "must be between -1 and 1, got -2"),
        (11, {"integer": True, "low": 0, "high": 10}, "must be between 0 and 10, got 11"),
    ],
)
def test_number_problem(value: object, kwargs: dict[str, object], expected: str | None) -> None:
    """Type first (with the quoted-number tip), then finiteness, then the range."""
    assert expected == number_problem(value, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "pattern", "kwargs", "expected"),
    [
        ("a1", IDENTIFIER, {}, (None, "a1")),
        ("", IDENTIFIER, {}, ("must be a non-empty string, got string ''", None)),
        (" ", None, {}, ("must be a non-empty string, got string ' '", None)),
        (
            "a b",
            IDENTIFIER,
            {},
            (
                (
                    "'a b' is not a valid identifier (letters, digits and _ . : / -, starting with "
                    "a letter or digit)"
                ),
                None,
            ),
        ),
        (
            "a b",
            IDENTIFIER,
            {"noun": "agent id"},
            (
                (
                    "'a b' is not a valid agent id (letters, digits and _ . : / -, starting with "
                    "a letter or digit)"
                ),
                None,
            ),
        ),
        ("C-1", None, {}, (None, "C-1")),
        (
            "C\u202e1",
            None,
            {},
            (
                "must not contain control or invisible formatting characters; got 'C\\u202e1'",
                None,
            ),
        ),
        (
            "Ab-c",
            FLAG,
            {"normalise": lambda t: t.lower().replace("-", "_")},
            (None, "ab_c"),
        ),
        (
            "ab",
            IDENTIFIER,
            {"normalise": lambda t: t * 3},
            ("has 6 characters; the limit is 5; it starts 'ababab'…", None),
        ),
    ],
)
def test_text_problem(
    value: object,
    pattern: object,
    kwargs: dict[str, object],
    expected: tuple[str | None, str | None],
) -> None:
    """Non-empty string, length (again after normalising), then the shape or safe characters."""
    assert expected == text_problem(value, pattern, 5, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-31", date(2026, 1, 31)),
        ("2026-13-01", None),
        ("2" * 65, None),
        (date(2026, 1, 31), None),
        (20260131, None),
    ],
)
def test_read_day(value: object, expected: date | None) -> None:
    """A date is read from YYYY-MM-DD text only (the YAML loader keeps dates as text)."""
    assert expected == read_day(value)


class _Count(int):
    """An int subclass, as a Python caller's IntEnum would be."""


def test_an_int_subclass_takes_the_worded_path_and_is_accepted() -> None:
    """A number that is not exactly an int skips the fast path and is still read as before."""
    agent = parse_roster(roster_data(agent_data(capacity={"max": _Count(3)}))).agents[0]
    assert (agent.capacity.max, agent.capacity.active) == (3, 0)
