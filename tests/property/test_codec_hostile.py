"""Hostile input: arbitrary JSON values into parse_case and parse_roster give RequestError only."""

import json
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.errors import RequestError
from caseroute.domain.fingerprint import canonical_json, case_to_dict, input_sha256, roster_to_dict
from caseroute.domain.json_source import JsonSourceError, parse_json_bytes
from caseroute.domain.limits import InputLimits
from caseroute.engine.decide import decide
from caseroute.testing import NOW, reference_ruleset

RULESET = reference_ruleset()
# Small limits so generated input crosses them often; the code paths are the same.
LIMITS = InputLimits(
    max_agents=4,
    max_id_chars=24,
    max_text_chars=40,
    max_list_items=4,
    max_attributes=4,
    max_sentiment_readings=4,
    max_sla_clocks=3,
)
MAX_ERROR_CHARS = 8_000  # whatever the input, the error stays well under gRPC's 8 KB metadata
HOSTILE = settings(deadline=timedelta(seconds=2), max_examples=200)

# Any character, including lone surrogates, controls, and look-alikes.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)
near_tokens = st.sampled_from(
    [
        "safeguarding",
        "Safeguarding\n",
        " consent_missing ",
        "US-TX",
        "us-tx\n",
        "en",
        "EN_gb",
        "2026-11-21T09:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-14:00",
        "2026-11-21",
        "phone",
        "clinical",
        "critical",
        "gold",
        "available",
        "senior",
        "x" * 300,
        "",
        "\u200b",
        "\ud800",
    ]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | any_text
    | near_tokens
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(any_text | near_tokens, inner, max_size=6)
    ),
    max_leaves=25,
)

VALID_CASE: dict[str, Any] = {
    "case_id": "C1",
    "created_at": "2026-11-21T09:00:00Z",
    "channel": "phone",
    "intent": "clinical",
    "urgency": "urgent",
    "classification_confidence": 0.9,
    "patient_location": "US-TX",
    "region": "US-TX",
    "tier": "gold",
    "required_skills": [{"name": "clinical-triage", "min_level": 2}],
    "preferred_language": "en",
    "sentiment": [{"score": -0.2, "at": "2026-11-21T09:01:00Z"}],
    "sla_clocks": [
        {
            "name": "first-response",
            "started_at": "2026-11-21T09:00:00Z",
            "deadline": "2026-11-21T13:00:00Z",
        }
    ],
    "flags": ["vip"],
    "attributes": {"notes": "n"},
}
VALID_AGENT: dict[str, Any] = {
    "agent_id": "nurse-1",
    "role": "senior",
    "status": "available",
    "licences": [{"type": "RN", "jurisdiction": "US-TX", "expires_on": "2030-01-01"}],
    "territories": ["US-TX"],
    "skills": [{"name": "clinical-triage", "level": 4}],
    "languages": ["en"],
    "capacity": {"max": 5, "active": 1},
    "last_assigned_at": "2026-11-21T08:00:00Z",
    "teams": ["south"],
    "seniority": 3,
    "attributes": {"grade": 2},
}
VALID_ROSTER: dict[str, Any] = {
    "snapshot_id": "s1",
    "taken_at": "2026-11-21T09:00:00Z",
    "agents": [VALID_AGENT],
}


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> Any:
    """A valid document with a few members replaced, removed or added, at any depth."""
    data: Any = json.loads(json.dumps(valid))
    for _ in range(draw(st.integers(1, 4))):
        node = data
        # Walk down a random path of existing containers, then change one member there.
        while True:
            if isinstance(node, dict) and node:
                key = draw(st.sampled_from(sorted(node)))
            elif isinstance(node, list) and node:
                key = draw(st.integers(0, len(node) - 1))
            else:
                break
            child = node[key]
            if not isinstance(child, dict | list) or draw(st.booleans()):
                action = draw(st.sampled_from(["replace", "delete", "add"]))
                if action == "replace":
                    node[key] = draw(json_values)
                elif action == "delete":
                    del node[key]
                elif isinstance(node, dict):
                    node[draw(any_text | near_tokens)] = draw(json_values)
                else:
                    node.append(draw(json_values))
                break
            node = child
    return data


def _check_error(exc: RequestError) -> None:
    text = str(exc)
    assert len(text) <= MAX_ERROR_CHARS, text[:200]
    for violation in exc.violations:
        assert len(violation.field) <= 200, violation.field[:200]
        assert len(violation.message) <= 600, violation.message[:200]


def _parse_case(data: Any) -> None:
    try:
        case = parse_case(data, limits=LIMITS)
    except RequestError as exc:
        _check_error(exc)
        return
    # What parsing accepts, the rest of the pipeline can hash, store and decide.
    canonical_json(case_to_dict(case)).encode()
    roster = parse_roster(VALID_ROSTER)
    input_sha256(case, roster)
    decide(case, roster, RULESET, NOW)


def _parse_roster(data: Any) -> None:
    try:
        roster = parse_roster(data, limits=LIMITS)
    except RequestError as exc:
        _check_error(exc)
        return
    canonical_json(roster_to_dict(roster)).encode()
    case = parse_case(VALID_CASE)
    input_sha256(case, roster)
    decide(case, roster, RULESET, NOW)


@HOSTILE
@given(json_values)
def test_any_json_value_as_a_case_is_a_request_error_at_worst(data: Any) -> None:
    """parse_case on any JSON value: a Case or a short RequestError, never another exception."""
    _parse_case(data)


@HOSTILE
@given(mutated(VALID_CASE))
def test_a_damaged_case_is_a_request_error_at_worst(data: Any) -> None:
    """A valid case with members replaced by arbitrary values never crashes parse or decide."""
    _parse_case(data)


@HOSTILE
@given(json_values)
def test_any_json_value_as_a_roster_is_a_request_error_at_worst(data: Any) -> None:
    """parse_roster on any JSON value: a Roster or a short RequestError only."""
    _parse_roster(data)


@HOSTILE
@given(mutated(VALID_ROSTER))
def test_a_damaged_roster_is_a_request_error_at_worst(data: Any) -> None:
    """A valid roster with members replaced by arbitrary values never crashes parse or decide."""
    _parse_roster(data)


@HOSTILE
@given(st.binary(max_size=200) | json_values.map(lambda v: repr(v).encode("utf-8", "replace")))
def test_any_bytes_as_a_json_file_are_a_json_source_error_at_worst(data: bytes) -> None:
    """The strict JSON reader turns any bytes into a value or a JsonSourceError."""
    try:
        parse_json_bytes(data, root="case", source="case.json")
    except JsonSourceError as exc:
        _check_error(exc)
