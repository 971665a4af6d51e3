"""Reading `caseroute simulate --out` lines back: each malformed part is named by its path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.limits import DEFAULT_LIMITS
from caseroute.simulate import request_from_json, simulate
from caseroute.wire.json_dialect import simulated_request_to_json

REQUEST = next(iter(simulate(1, 2, 11)))
"""One simulated request (one case, two agents)."""


def _line(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    """REQUEST as ``simulate --out`` writes it, then ``change``d."""
    data = simulated_request_to_json(REQUEST)
    change(data)
    return data


def _refused(data: Any) -> tuple[FieldViolation, ...]:
    """The violations ``request_from_json(data)`` raises."""
    with pytest.raises(RequestError) as raised:
        request_from_json(data)
    return raised.value.violations


def test_a_line_that_is_not_an_object_is_refused_as_a_whole() -> None:
    """A JSON array (or any non-object) line: one violation at `request`."""
    assert _refused([simulated_request_to_json(REQUEST)]) == (
        FieldViolation("request", "must be a JSON object"),
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("request_id"),
        lambda d: d.update(request_id=""),
        lambda d: d.update(request_id="r" * (DEFAULT_LIMITS.max_id_chars + 1)),
        lambda d: d.update(request_id=7),
    ],
    ids=["missing", "empty", "too-long", "number"],
)
def test_a_request_id_must_be_1_to_200_characters(
    change: Callable[[dict[str, Any]], object],
) -> None:
    """request_id missing, empty, 201 characters or not a string: named with the allowed length."""
    assert _refused(_line(change)) == (
        FieldViolation("request_id", "must be a string of 1-200 characters"),
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("cases"),
        lambda d: d.update(cases=[]),
        lambda d: d.update(cases=d["cases"][0]),
        lambda d: d.update(cases=d["cases"] * (DEFAULT_LIMITS.max_batch_cases + 1)),
    ],
    ids=["missing", "empty", "object", "too-many"],
)
def test_cases_must_be_a_list_of_1_to_the_batch_limit(
    change: Callable[[dict[str, Any]], object],
) -> None:
    """Cases missing, empty, an object or over max_batch_cases: one violation at `cases`."""
    assert _refused(_line(change)) == (FieldViolation("cases", "must be a list of 1-1000 cases"),)


def test_a_roster_problem_is_named_under_roster_with_the_others() -> None:
    """A roster whose agents is a number, and a bad request_id: both reported at once."""

    def change(data: dict[str, Any]) -> None:
        data["roster"]["agents"] = 3
        data["request_id"] = ""

    assert _refused(_line(change)) == (
        FieldViolation("request_id", "must be a string of 1-200 characters"),
        FieldViolation("roster.agents", "must be a list, got number 3"),
    )


def test_an_unchanged_line_reads_back_as_the_request() -> None:
    """The line as written is accepted and gives back the very request (the edits above matter)."""
    assert request_from_json(_line(lambda _: None)) == REQUEST
