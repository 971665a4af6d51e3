"""Sentiment readings sort in a total order: the order sent never changes the case (R33a M2)."""

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any
from unittest.mock import patch

import pytest
from google.protobuf import json_format

from caseroute.domain import codec, fast_dict
from caseroute.domain.case import Case, SentimentReading
from caseroute.domain.code_built import checked_case
from caseroute.domain.decision import Outcome
from caseroute.domain.fingerprint import case_json
from caseroute.domain.limits import DEFAULT_LIMITS
from caseroute.engine.decide import decide
from caseroute.testing import NOW, case_data, make_agent, make_roster, reference_ruleset
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert, fast

AT = "2026-11-21T09:45:00Z"
UNHAPPY = {"score": -0.8, "at": AT}
CONTENT = {"score": 0.5, "at": AT}


def _data(*readings: dict[str, Any]) -> dict[str, Any]:
    """A complaint at SLA risk with ``readings`` in the order given."""
    return case_data(
        intent="complaint",
        urgency="urgent",
        region="US-TX",
        patient_location="US-TX",
        sentiment=[{"score": -0.2, "at": "2026-11-21T08:00:00Z"}, *readings],
        sla_clocks=[
            {
                "name": "ack",
                "started_at": "2026-11-20T14:10:00Z",
                "deadline": "2026-11-21T10:40:00Z",
            }
        ],
    )


def _strict(data: dict[str, Any]) -> Case:
    """``parse_case`` with the fast dict path doubting everything."""

    def doubt(*_: object) -> Case:
        raise fast_dict.Doubt

    with patch.object(codec, "case_from_dict", doubt):
        return codec.parse_case(data)


def _proto(data: dict[str, Any]) -> pb.Case:
    """The case as a protobuf message."""
    return json_format.ParseDict(
        data
        | {"channel": "CHANNEL_PHONE", "intent": "INTENT_COMPLAINT", "urgency": "URGENCY_URGENT"},
        pb.Case(),
    )


PARSERS: dict[str, Callable[[dict[str, Any]], Case]] = {
    "strict dict": _strict,
    "fast dict": lambda data: fast_dict.case_from_dict(data, DEFAULT_LIMITS),
    "parse_case": codec.parse_case,
    "fast proto": lambda data: fast.case_from_proto(_proto(data), DEFAULT_LIMITS),
    "convert proto": lambda data: convert.case_from_proto(_proto(data)),
    "built in code": lambda data: checked_case(
        replace(
            codec.parse_case(data),
            sentiment=tuple(
                SentimentReading(r["score"], datetime.fromisoformat(r["at"]))
                for r in data["sentiment"]
            ),
        )
    ),
}


@pytest.mark.parametrize("parser", sorted(PARSERS))
def test_readings_at_one_instant_sort_the_same_whatever_the_order_sent(parser: str) -> None:
    """Every parser sorts same-instant readings lowest score last: one case, one input hash."""
    parse = PARSERS[parser]
    first, second = parse(_data(UNHAPPY, CONTENT)), parse(_data(CONTENT, UNHAPPY))
    oldest_first_lowest_last = [-0.2, 0.5, -0.8]
    assert oldest_first_lowest_last == [r.score for r in first.sentiment]
    assert first == second
    assert case_json(first) == case_json(second)


def test_a_negative_zero_tie_still_has_one_order() -> None:
    """0.0 and -0.0 at one instant (equal numbers) still sort one way, so the hash is one."""
    zero, negative_zero = {"score": 0.0, "at": AT}, {"score": -0.0, "at": AT}
    first = codec.parse_case(_data(zero, negative_zero))
    second = codec.parse_case(_data(negative_zero, zero))
    assert case_json(first) == case_json(second)


def test_a_tie_never_hides_the_unhappy_reply_from_the_decision() -> None:
    """An unhappy reply tied with a content one counts as latest: the case escalates either way."""
    ruleset = reference_ruleset()
    roster = make_roster(make_agent("a1", territories=frozenset({"US-TX"})))
    decisions = [
        decide(codec.parse_case(_data(*readings)), roster, ruleset, NOW)
        for readings in ((UNHAPPY, CONTENT), (CONTENT, UNHAPPY))
    ]
    escalated = [Outcome.ESCALATE, Outcome.ESCALATE]
    assert escalated == [d.outcome for d in decisions]
    assert decisions[0].decision_id == decisions[1].decision_id
    assert decisions[0].explanation.input_sha256 == decisions[1].explanation.input_sha256
