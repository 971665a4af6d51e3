"""Each reason the fast dict path hands a case or roster to the strict parser, one by one.

For every change to a valid dict: ``fast_dict`` doubts, and ``parse_roster``/``parse_case``
give exactly what the strict parser alone gives (the value, or its violations).
"""

import copy
import math
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from unittest.mock import patch

import pytest

from caseroute.domain import codec, fast_dict
from caseroute.domain.case import Case, Tier
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.limits import DEFAULT_LIMITS as LIMITS
from caseroute.domain.roster import Capacity, Licence, Role, Roster

Change = Callable[[dict[str, Any]], object]


def roster() -> dict[str, Any]:
    """A valid roster of two agents, every field given."""
    agent = {
        "agent_id": "a1",
        "role": "senior",
        "status": "available",
        "licences": [
            {"type": "RN", "jurisdiction": "US-TX", "expires_on": "2027-01-01", "multistate": True}
        ],
        "territories": ["US-TX", "US"],
        "skills": [{"name": "triage", "level": 3}, {"name": "billing", "level": 0}],
        "languages": ["en", "es-mx"],
        "capacity": {"max": 5, "active": 2},
        "last_assigned_at": "2026-11-21T09:00:00+01:00",
        "teams": ["north"],
        "seniority": 7,
        "attributes": {"grade": "band 6", "fte": 0.8, "bank": False, "shifts": 3},
    }
    other = {"agent_id": "a2", "status": "busy", "capacity": {}}
    return {"snapshot_id": "S-1", "taken_at": "2026-11-21T09:00:00Z", "agents": [agent, other]}


def case() -> dict[str, Any]:
    """A valid case, every field given."""
    return {
        "case_id": "C-1",
        "created_at": "2026-11-21T09:00:00Z",
        "channel": "phone",
        "intent": "clinical",
        "urgency": "URGENCY_URGENT",
        "classification_confidence": 0.9,
        "patient_location": "US-TX",
        "region": "US-TX",
        "tier": "gold",
        "required_skills": [{"name": "triage", "min_level": 2}],
        "preferred_language": "en",
        "sentiment": [
            {"score": -0.5, "at": "2026-11-21T09:10:00Z"},
            {"score": 1, "at": "2026-11-21T09:05:00Z"},
        ],
        "sla_clocks": [
            {
                "name": "first-response",
                "started_at": "2026-11-21T09:00:00Z",
                "deadline": "2026-11-21T13:00:00Z",
            }
        ],
        "flags": ["vip"],
        "attributes": {"member_since": 2019},
        "waiting_since": "2026-11-21T09:01:00Z",
        "declined_agents": ["a3"],
        "preferred_agents": [
            {
                "agent_id": "a1",
                "reason": "previous_contact",
                "last_contact_at": "2026-11-01T10:00:00Z",
            }
        ],
    }


def strict(parse: Callable[[], object]) -> object:
    """What the strict parser alone gives: the value or its violations."""

    def doubt(*_: object) -> None:
        raise fast_dict.Doubt

    with (
        patch.object(codec, "case_from_dict", doubt),
        patch.object(codec, "roster_from_dict", doubt),
    ):
        return given(parse)


def given(parse: Callable[[], object]) -> object:
    """The parsed value, or the violations raised."""
    try:
        return parse()
    except RequestError as exc:
        violations: tuple[FieldViolation, ...] = exc.violations
        return violations


def agent(n: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The roster's ``n``-th agent."""
    return lambda r: r["agents"][n]


def setter(get: Callable[[dict[str, Any]], Any], key: Any, value: object) -> Change:
    """A change setting ``key`` of the object ``get`` finds."""
    return lambda d: get(d).__setitem__(key, value)


def remover(get: Callable[[dict[str, Any]], Any], key: str) -> Change:
    """A change removing ``key`` from the object ``get`` finds."""
    return lambda d: get(d).pop(key)


def top(d: dict[str, Any]) -> dict[str, Any]:
    """The object itself."""
    return d


def lic(d: dict[str, Any]) -> dict[str, Any]:
    """The first agent's licence."""
    licence: dict[str, Any] = d["agents"][0]["licences"][0]
    return licence


def skill(d: dict[str, Any]) -> dict[str, Any]:
    """The first agent's first skill."""
    found: dict[str, Any] = d["agents"][0]["skills"][0]
    return found


ROSTER_HANDOVERS: dict[str, Change] = {
    "roster not a dict": lambda d: d.clear(),  # replaced below by a list
    "unknown roster key": setter(top, "extra", 1),
    "snapshot id under both spellings": setter(top, "snapshotId", "S-2"),
    "non-str key": setter(top, 1, 1),
    "agents not a list": setter(top, "agents", ("a",)),
    "too many agents": setter(top, "agents", [{}] * (LIMITS.max_agents + 1)),
    "duplicate agent id": setter(agent(1), "agent_id", "a1"),
    "snapshot id missing": remover(top, "snapshot_id"),
    "snapshot id not ASCII": setter(top, "snapshot_id", "S-é"),
    "snapshot id with a control character": setter(top, "snapshot_id", "S\x07"),
    "snapshot id blank": setter(top, "snapshot_id", "  "),
    "snapshot id too long": setter(top, "snapshot_id", "S" * (LIMITS.max_id_chars + 1)),
    "taken_at a datetime": setter(top, "taken_at", datetime(2026, 11, 21, tzinfo=UTC)),
    "taken_at without offset": setter(top, "taken_at", "2026-11-21T09:00:00"),
    "agent not a dict": setter(top, "agents", ["a1"]),
    "agent id a number": setter(agent(0), "agent_id", 7),
    "agent id bad shape": setter(agent(0), "agent_id", "a 1"),
    "agent id too long": setter(agent(0), "agent_id", "a" * (LIMITS.max_id_chars + 1)),
    "role unspecified": setter(agent(0), "role", "ROLE_UNSPECIFIED"),
    "role a number": setter(agent(0), "role", 2),
    "role unknown": setter(agent(0), "role", "boss"),
    "status missing": remover(agent(0), "status"),
    "capacity missing": remover(agent(1), "capacity"),
    "capacity a float": setter(agent(1), "capacity", {"max": 2.0}),
    "capacity active a boolean": setter(agent(1), "capacity", {"active": True}),
    "capacity over range": setter(agent(1), "capacity", {"max": 10_001}),
    "licences a tuple": setter(agent(0), "licences", ()),
    "too many licences": setter(agent(0), "licences", [{}] * (LIMITS.max_list_items + 1)),
    "licence unknown key": setter(lic, "state", "TX"),
    "licence jurisdiction lower-case": setter(lic, "jurisdiction", "us-tx"),
    "licence jurisdiction padded": setter(lic, "jurisdiction", " US-TX"),
    "licence type a number": setter(lic, "type", 1),
    "licence expiry bad date": setter(lic, "expires_on", "2027-13-01"),
    "licence expiry a date": setter(lic, "expires_on", date(2027, 1, 1)),
    "licence multistate a string": setter(lic, "multistate", "true"),
    "licence multistate a number": setter(lic, "multistate", 1),
    "territories a string": setter(agent(0), "territories", "US-TX"),
    "territory bad shape": setter(agent(0), "territories", ["US TX"]),
    "skill listed twice": setter(agent(0), "skills", [{"name": "x"}, {"name": "x", "level": 1}]),
    "skill level a float": setter(skill, "level", 3.0),
    "skill level a boolean": setter(skill, "level", value=True),
    "skill level over range": setter(skill, "level", 11),
    "skill unknown key": setter(skill, "lvl", 3),
    "language upper-case": setter(agent(0), "languages", ["EN"]),
    "language underscore": setter(agent(0), "languages", ["es_mx"]),
    "language not a string": setter(agent(0), "languages", [None]),
    "last assigned a datetime": setter(
        agent(0), "last_assigned_at", datetime(2026, 1, 1, tzinfo=UTC)
    ),
    "last assigned bad": setter(agent(0), "last_assigned_at", "yesterday"),
    "seniority over range": setter(agent(0), "seniority", 101),
    "seniority a float": setter(agent(0), "seniority", 7.0),
    "attributes not a dict": setter(agent(0), "attributes", [("a", 1)]),
    "too many attributes": setter(
        agent(0), "attributes", {f"k{i}": 1 for i in range(LIMITS.max_attributes + 1)}
    ),
    "attribute wrapped value": setter(agent(0), "attributes", {"a": {"string_value": "x"}}),
    "attribute name bad shape": setter(agent(0), "attributes", {"Grade": "x"}),
    "attribute name too long": setter(
        agent(0), "attributes", {"a" * (LIMITS.max_id_chars + 1): "x"}
    ),
    "attribute name a number": setter(agent(0), "attributes", {1: "x"}),
    "attribute value null": setter(agent(0), "attributes", {"a": None}),
    "attribute value a list": setter(agent(0), "attributes", {"a": []}),
    "attribute value NaN": setter(agent(0), "attributes", {"a": math.nan}),
    "attribute value over range": setter(agent(0), "attributes", {"a": 10**16}),
    "attribute text too long": setter(
        agent(0), "attributes", {"a": "x" * (LIMITS.max_text_chars + 1)}
    ),
    "attribute text lone surrogate": setter(agent(0), "attributes", {"a": "x\ud800"}),
}


@pytest.mark.parametrize("reason", list(ROSTER_HANDOVERS))
def test_roster_handed_over(reason: str) -> None:
    """An unusual roster is left to the strict parser, whose result parse_roster gives."""
    data: Any = roster()
    ROSTER_HANDOVERS[reason](data)
    if reason == "roster not a dict":
        data = [data]
    with pytest.raises(fast_dict.Doubt):
        fast_dict.roster_from_dict(data, LIMITS)
    assert strict(lambda: codec.parse_roster(data)) == given(lambda: codec.parse_roster(data))


CASE_HANDOVERS: dict[str, Change] = {
    "case id missing": remover(top, "case_id"),
    "case id not ASCII": setter(top, "case_id", "C-é"),
    "case id under both spellings": setter(top, "caseId", "C-2"),
    "unknown case key": setter(top, "priority", 1),
    "channel unspecified": setter(top, "channel", "CHANNEL_UNSPECIFIED"),
    "intent a number": setter(top, "intent", 1),
    "urgency unknown": setter(top, "urgency", "soon"),
    "tier unspecified": setter(top, "tier", "TIER_UNSPECIFIED"),
    "confidence over range": setter(top, "classification_confidence", 1.5),
    "confidence NaN": setter(top, "classification_confidence", math.nan),
    "confidence a boolean": setter(top, "classification_confidence", value=True),
    "confidence a string": setter(top, "classification_confidence", "0.9"),
    "location lower-case": setter(top, "patient_location", "us-tx"),
    "region bad shape": setter(top, "region", "US TX"),
    "language to normalise": setter(top, "preferred_language", "EN_gb"),
    "flag to normalise": setter(top, "flags", ["Consent-Missing"]),
    "flag padded": setter(top, "flags", [" safeguarding "]),
    "flag fullwidth": setter(top, "flags", ["\uff53afeguarding"]),
    "flag bad shape": setter(top, "flags", ["a b"]),
    "flag too long": setter(top, "flags", ["f" * (LIMITS.max_id_chars + 1)]),
    "flag not a string": setter(top, "flags", [1]),
    "flags a tuple": setter(top, "flags", ("vip",)),
    "too many flags": setter(top, "flags", ["vip"] * (LIMITS.max_list_items + 1)),
    "required skill level a float": setter(
        top, "required_skills", [{"name": "t", "min_level": 2.0}]
    ),
    "too many readings": setter(
        top, "sentiment", [{"at": "2026-11-21T09:00:00Z"}] * (LIMITS.max_sentiment_readings + 1)
    ),
    "reading score over range": setter(
        top, "sentiment", [{"score": 2, "at": "2026-11-21T09:00:00Z"}]
    ),
    "reading without instant": setter(top, "sentiment", [{"score": 0.5}]),
    "clock named twice": lambda d: d["sla_clocks"].append(dict(d["sla_clocks"][0])),
    "clock deadline bad": lambda d: d["sla_clocks"][0].__setitem__("deadline", "x"),
    "too many clocks": setter(top, "sla_clocks", [{}] * (LIMITS.max_sla_clocks + 1)),
    "attributes wrapped": setter(top, "attributes", {"a": {"bool_value": True}}),
    "waiting since bad": setter(top, "waiting_since", "2026-11-21"),
    "declined bad shape": setter(top, "declined_agents", ["a 3"]),
    "preferred agent twice": lambda d: d["preferred_agents"].append(
        {"agent_id": "a1", "reason": "care_team"}
    ),
    "preferred reason missing": lambda d: d["preferred_agents"][0].pop("reason"),
    "preferred contact bad": lambda d: d["preferred_agents"][0].__setitem__("last_contact_at", 5),
}


@pytest.mark.parametrize("reason", list(CASE_HANDOVERS))
def test_case_handed_over(reason: str) -> None:
    """An unusual case is left to the strict parser, whose result parse_case gives."""
    data = case()
    CASE_HANDOVERS[reason](data)
    with pytest.raises(fast_dict.Doubt):
        fast_dict.case_from_dict(data, LIMITS)
    flags = frozenset({"vip"})
    expected = strict(lambda: codec.parse_case(data, safeguarding_flags=flags))
    assert expected == given(lambda: codec.parse_case(data, safeguarding_flags=flags))


def test_valid_roster_parsed_by_the_fast_path() -> None:
    """Every field of a valid roster is read as the strict parser reads it."""
    data = roster()
    parsed = fast_dict.roster_from_dict(copy.deepcopy(data), LIMITS)
    assert strict(lambda: codec.parse_roster(data)) == parsed
    first, second = parsed.agents
    roles = (Role.SENIOR, Role.AGENT)
    assert roles == (first.role, second.role)
    licences = (Licence("RN", "US-TX", date(2027, 1, 1), multistate=True),)
    assert licences == first.licences
    assert datetime(2026, 11, 21, 8, tzinfo=UTC) == first.last_assigned_at
    assert Capacity(0, 0) == second.capacity


def test_lower_camel_keys_and_nulls_take_the_fast_path() -> None:
    """JSON names and nulls (not given) are read as the strict parser reads them."""
    data = roster()
    data["snapshotId"] = data.pop("snapshot_id")
    data["agents"][0]["lastAssignedAt"] = data["agents"][0].pop("last_assigned_at")
    data["agents"][0]["licences"][0]["expiresOn"] = "2027-01-01"
    del data["agents"][0]["licences"][0]["expires_on"]
    data["agents"][1] |= {"role": None, "seniority": None, "attributes": None, "teams": None}
    data["agents"][1]["capacity"] = {"max": None, "active": 1}
    expected = strict(lambda: codec.parse_roster(data))
    assert isinstance(expected, Roster)
    assert expected == fast_dict.roster_from_dict(data, LIMITS)


def test_valid_case_parsed_by_the_fast_path() -> None:
    """A valid case is the strict parser's value: readings oldest first, scores as floats."""
    data = case()
    parsed = fast_dict.case_from_dict(data, LIMITS)
    assert strict(lambda: codec.parse_case(data)) == parsed
    assert [(1.0, float), (-0.5, float)] == [(r.score, type(r.score)) for r in parsed.sentiment]


def test_case_with_nothing_optional_takes_the_fast_path() -> None:
    """A case of only its required fields gets the strict parser's defaults."""
    data = {k: case()[k] for k in ("case_id", "created_at", "channel", "intent", "urgency")}
    parsed = fast_dict.case_from_dict(data, LIMITS)
    assert strict(lambda: codec.parse_case(data)) == parsed
    defaults = (1.0, Tier.STANDARD, None)
    assert defaults == (
        parsed.classification_confidence,
        parsed.tier,
        parsed.patient_location,
    )


@pytest.mark.parametrize("flag", ["Consent-Missing", " consent_missing", "\uff43onsent_missing"])
def test_hard_constraint_flag_spellings_still_reach_the_case(flag: str) -> None:
    """A consent flag the fast path does not vouch for is still read (normalised) by parse_case."""
    data = case()
    data["flags"] = [flag]
    parsed = codec.parse_case(data)
    assert isinstance(parsed, Case)
    assert frozenset({"consent_missing"}) == parsed.flags


def test_non_ascii_attribute_text_takes_the_fast_path() -> None:
    """Valid non-ASCII attribute text is not a reason to hand over."""
    data = roster()
    data["agents"][0]["attributes"] = {"name": "Zoë"}
    assert strict(lambda: codec.parse_roster(data)) == fast_dict.roster_from_dict(data, LIMITS)
