"""Request and ruleset errors survive a process boundary (replay workers) intact."""

from __future__ import annotations

import pickle

from caseroute.domain.errors import FieldViolation, Problem, RequestError, RulesetError
from caseroute.domain.json_source import JsonSourceError
from caseroute.rules.fmt import FormatError

VIOLATIONS = [
    FieldViolation("case.created_at", "is after now"),
    FieldViolation("roster.agents[0].capacity.max", "must be at least 1"),
]
PROBLEMS = [Problem("expr.unknown_field", "unknown field `case.urgncy`", "r.yaml", 7, 3, "urgent")]


def test_request_errors_round_trip_through_pickle_with_their_violations() -> None:
    """RequestError and its subclasses come back with the same type, violations and text."""
    for cls in (RequestError, JsonSourceError):
        sent = cls(VIOLATIONS)
        received = pickle.loads(pickle.dumps(sent))  # noqa: S301 - our own bytes
        assert (type(received), received.violations, str(received)) == (
            cls,
            tuple(VIOLATIONS),
            str(sent),
        )


def test_ruleset_errors_round_trip_through_pickle_with_their_problems() -> None:
    """RulesetError and its subclasses come back with the same type, problems and text."""
    for cls in (RulesetError, FormatError):
        sent = cls(PROBLEMS)
        received = pickle.loads(pickle.dumps(sent))  # noqa: S301 - our own bytes
        assert (type(received), received.problems, str(received)) == (
            cls,
            tuple(PROBLEMS),
            str(sent),
        )
