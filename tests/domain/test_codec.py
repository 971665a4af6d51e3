import json
from functools import partial

import pytest

from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.errors import RequestError
from caseroute.domain.fingerprint import case_to_dict, input_sha256, roster_to_dict
from caseroute.testing import agent_data, case_data, roster_data

_case = partial(case_data, intent="clinical")  # parsing a clinical enquiry


def _fields(exc: pytest.ExceptionInfo[RequestError]) -> list[str]:
    return [v.field for v in exc.value.violations]


def test_every_bad_field_is_named_in_one_error() -> None:
    """All violations are reported together, each with its field path."""
    bad = _case(
        urgency="critcal",
        created_at="yesterday",
        tier=7,  # 1-3 are TIER_STANDARD..TIER_PLATINUM in the JSON dialect
        sentiment=[{"score": 2, "at": "2026-11-21T09:00:00Z"}],
        colour="red",
    )
    with pytest.raises(RequestError) as exc:
        parse_case(bad)
    assert sorted(_fields(exc)) == sorted(
        ["case.colour", "case.created_at", "case.urgency", "case.tier", "case.sentiment[0].score"]
    )
    urgency = next(v for v in exc.value.violations if v.field == "case.urgency")
    assert urgency.message == (
        "must be one of URGENCY_ROUTINE, URGENCY_URGENT, URGENCY_CRITICAL; got 'critcal' "
        "(did you mean 'URGENCY_CRITICAL'?)"
    )


def test_timestamps_need_an_offset() -> None:
    """A naive timestamp is rejected rather than silently taken as local or UTC."""
    with pytest.raises(RequestError) as exc:
        parse_case(_case(created_at="2026-11-21T09:00:00"))
    assert _fields(exc) == ["case.created_at"]


def test_codes_are_normalised_and_sentiment_sorted_oldest_first() -> None:
    """Jurisdictions upper-case, languages lower-case, readings sorted by time."""
    case = parse_case(
        _case(
            patient_location="us-tx",
            preferred_language="EN_gb",
            sentiment=[
                {"score": -0.5, "at": "2026-11-21T09:10:00Z"},
                {"score": 0.1, "at": "2026-11-21T09:05:00+00:00"},
            ],
        )
    )
    assert case.patient_location == "US-TX"
    assert case.preferred_language == "en-gb"
    assert [r.score for r in case.sentiment] == [0.1, -0.5]


def test_booleans_are_not_numbers() -> None:
    """True is not accepted where a number is expected (durable_rules would coerce it)."""
    with pytest.raises(RequestError) as exc:
        parse_case(_case(classification_confidence=True))
    assert _fields(exc) == ["case.classification_confidence"]


def test_duplicate_agents_and_skills_are_rejected() -> None:
    """A roster with a repeated agent_id or skill names the second occurrence."""
    with pytest.raises(RequestError) as exc:
        parse_roster(
            roster_data(
                agent_data("a1"),
                agent_data("a1"),
                agent_data("a2", skills=[{"name": "x", "level": 1}, {"name": "x", "level": 2}]),
            )
        )
    assert _fields(exc) == ["roster.agents[1].agent_id", "roster.agents[2].skills[1].name"]


def test_attribute_values_must_be_scalars() -> None:
    """Attribute maps hold strings, numbers or booleans only."""
    with pytest.raises(RequestError) as exc:
        parse_case(_case(attributes={"ok": 1, "bad": [1], "Bad-Key": "x"}))
    assert sorted(_fields(exc)) == ["case.attributes.Bad-Key", "case.attributes.bad"]


def test_canonical_form_round_trips_and_hash_ignores_set_order() -> None:
    """parse(to_dict(x)) == x, and reordering flags/territories keeps the input hash."""
    case = parse_case(_case(flags=["vip", "callback"], region="R1"))
    roster = parse_roster(
        roster_data(
            agent_data(
                territories=["B", "A"],
                licences=[{"type": "RN", "jurisdiction": "US-TX", "expires_on": "2027-01-01"}],
            )
        )
    )
    assert parse_case(json.loads(json.dumps(case_to_dict(case)))) == case
    assert parse_roster(json.loads(json.dumps(roster_to_dict(roster)))) == roster
    reordered = parse_case(_case(flags=["callback", "vip"], region="R1"))
    roster2 = parse_roster(
        roster_data(
            agent_data(
                territories=["A", "B"],
                licences=[{"type": "RN", "jurisdiction": "US-TX", "expires_on": "2027-01-01"}],
            )
        )
    )
    assert input_sha256(case, roster) == input_sha256(reordered, roster2)
    assert input_sha256(case, roster) != input_sha256(parse_case(_case(region="R2")), roster)
