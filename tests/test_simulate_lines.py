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
    ("change", "expected"),
    [
        (
            lambda d: d.pop("request_id"),
            "is required: a simulated request carries its idempotency key",
        ),
        (
            lambda d: d.update(request_id=""),
            (
                'is empty, which reads as unset (docs/json.md, "Empty envelope strings"): '
                "a simulated request carries its idempotency key"
            ),
        ),
        (
            lambda d: d.update(request_id="r" * (DEFAULT_LIMITS.max_id_chars + 1)),
            (
                "has 201 characters; the limit is 200 (configurable: --max-id-chars); it "
                f"starts '{'r' * 40}'…"
            ),
        ),
        (lambda d: d.update(request_id=7), "must be a non-empty string, got number 7"),
    ],
    ids=["missing", "empty", "too-long", "number"],
)
def test_a_request_id_must_be_1_to_200_characters(
    change: Callable[[dict[str, Any]], object], expected: str
) -> None:
    """request_id missing, empty, 201 characters or not a string: one violation saying which."""
    assert _refused(_line(change)) == (FieldViolation("request_id", expected),)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("case"), FieldViolation("case", "is required")),
        (
            lambda d: (d.pop("case"), d.update(cases=[])),
            FieldViolation("cases", "is empty: send at least one case"),
        ),
        (
            lambda d: d.update(cases=[d.pop("case")] * (DEFAULT_LIMITS.max_batch_cases + 1)),
            FieldViolation(
                "cases", "has 1001 items; the limit is 1000 (configurable: --max-batch-cases)"
            ),
        ),
    ],
    ids=["missing", "empty", "too-many"],
)
def test_the_case_or_cases_must_be_there_and_within_the_batch_limit(
    change: Callable[[dict[str, Any]], object], expected: FieldViolation
) -> None:
    """No case, an empty batch or one over max_batch_cases: one violation at `case`/`cases`."""
    assert _refused(_line(change)) == (expected,)


def test_a_roster_problem_is_named_under_roster_with_the_others() -> None:
    """A roster whose agents is a number, and a missing now: both reported at once."""

    def change(data: dict[str, Any]) -> None:
        data["roster"]["agents"] = 3
        del data["now"]

    assert _refused(_line(change)) == (
        FieldViolation("now", "is required: a simulated request carries its decision instant"),
        FieldViolation("roster.agents", "must be a list, got number 3"),
    )


def test_a_line_is_the_request_simulate_server_sends() -> None:
    """One case: a DecideRequest with the level and ruleset --server sends (FULL by default)."""
    line = simulated_request_to_json(REQUEST, ruleset="patient-enquiries", version="2026.12.1")
    assert (sorted(line), line["explanation_level"], line["ruleset"]) == (
        ["case", "explanation_level", "now", "request_id", "roster", "ruleset"],
        "EXPLANATION_LEVEL_FULL",
        {"name": "patient-enquiries", "version": "2026.12.1"},
    )


def test_an_unchanged_line_reads_back_as_the_request() -> None:
    """The line as written is accepted and gives back the very request (the edits above matter)."""
    assert request_from_json(_line(lambda _: None)) == REQUEST
