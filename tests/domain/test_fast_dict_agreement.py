"""The fast dict -> domain path agrees with the strict parser on valid and near-valid dicts.

Oracle: ``domain.codec``'s strict parser with the fast path switched off. For every generated
dict, the fast path either returns exactly the strict parser's value (equal domain object, same
canonical JSON) or doubts; and ``parse_roster``/``parse_case`` (fast first) return the strict
value or raise its very violations.
"""

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.domain import codec, fast_dict
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.fingerprint import canonical_json, case_to_dict, roster_to_dict
from caseroute.domain.limits import InputLimits
from tests.sampling import sampled

T = TypeVar("T")

# Small limits so generated input crosses every one of them often.
LIMITS = InputLimits(
    max_agents=3,
    max_id_chars=12,
    max_text_chars=10,
    max_list_items=3,
    max_attributes=2,
    max_sentiment_readings=3,
    max_sla_clocks=2,
)
AGREEMENT = settings(max_examples=500)

# Valid first, then odd: a pool's valid part ends at its split index.
CODES = (["a1", "US-TX", "RN", "x:y/z.w_v", "x" * 12], ["x" * 13, "", " a", "a\n", "-a", "é"])
JURISDICTIONS = (["US-TX", "US", "GB-ENG-NW"], [" us-tx ", "gb-eng", "\uff55\uff53", "US-", ""])
LANGUAGES = (["en", "es-mx", "zh-hant"], ["EN_gb", " es-MX ", "\u0130n", "e", "en-", "en\n"])
FLAGS = (
    ["safeguarding", "no_consent", "vip", "a.b:c/d"],
    [
        "Consent-Missing",
        "consent_missing",
        " vip ",
        "\uff56\uff49\uff50",
        "\u017fafeguarding",
        "",
        "a b",
        "\u200b",
    ],
)
IDENTIFIERS = (["C-1", "case 1", "x" * 12], ["x" * 13, "", " ", "é", "a\u200b", "a\x7f", "t\t"])
DATES = (["2027-01-01", "2020-02-29"], ["20270101", "2027-13-01", "", "x" * 70, 20270101])
STAMPS = (
    ["2026-11-21T09:00:00Z", "2026-11-21T09:00:00+05:30", "2026-11-21T09:00:00.123456Z"],
    [
        "2026-11-21T09:00:00",
        "0001-01-01T00:00:00+01:00",
        "2026-11-21",
        "x",
        "",
        datetime(2026, 11, 21, tzinfo=UTC),
    ],
)
ODD = [None, True, 0, 1, -1, 1.5, math.nan, "", "x", [], ["a"], ("a",), {}, {"a": 1}]
ATTRIBUTE_KEYS = (["tier", "b_1", "_x"], ["A", "1a", "x" * 13, 1])
ATTRIBUTE_VALUES = (
    ["", "plain", "é\n", 3, -2.5, 1e15, True, False],
    ["x" * 11, "\ud800", "a\x00", math.nan, math.inf, 1.5e15, None, [], {"string_value": "x"}],
)

# Strategies are built once, not on every draw (tests/sampling.py): building them per draw
# spent most of these tests' time in Hypothesis's own strategy caching and validation.
BOOLEANS = st.booleans()
UNIT = st.floats(0, 1)


class Pick:
    """Draws one example's values: wholly valid, or odd ones mixed in at a rate drawn per example.

    Low rates give examples with one or two odd values (each must reach its own check); high
    rates give examples odd everywhere.
    """

    def __init__(self, draw: Any, *, valid: bool = False) -> None:
        """Draw this example's mode (``valid``: always wholly valid)."""
        self.draw = draw
        self.rate = 0.0 if valid else draw(sampled([0.0, 0.02, 0.05, 0.3]))

    def odd(self) -> bool:
        """Whether the next value is an odd one."""
        return self.rate > 0 and self.draw(UNIT) < self.rate

    def __call__(self, pool: tuple[list[Any], list[Any]]) -> Any:
        """A value from the pool's valid part, or (at the odd rate) its odd part or ``ODD``."""
        if self.odd():
            return self.draw(sampled(pool[1] + ODD))
        return self.draw(sampled(pool[0]))

    def count(self, most: int) -> int:
        """A list's length: within its limit, or one over it at the odd rate."""
        count: int = self.draw(st.integers(0, most + 1 if self.odd() else most))
        return count

    def obj(self, fields: dict[str, Any], optional: frozenset[str] = frozenset()) -> Any:
        """A JSON object: each key snake or camel case, optional ones sometimes left out.

        At the odd rate: a required key left out, an unknown key, both spellings of one, or
        a list in place of the object.
        """
        out: dict[Any, Any] = {}
        for name, value in fields.items():
            if self.draw(BOOLEANS) if name in optional else self.odd():
                continue
            out[codec.lower_camel(name) if self.draw(BOOLEANS) else name] = value
        if self.odd():
            out[self.draw(sampled(["extra", 7, "agentID"]))] = 1
        if self.odd() and fields:
            name = self.draw(sampled(sorted(fields)))
            out[name] = out[codec.lower_camel(name)] = fields[name]
        if self.odd():
            return self.draw(st.sampled_from([list(out), None, "x"]))
        return out

    def strings(self, pool: tuple[list[Any], list[Any]]) -> Any:
        """A list of strings from ``pool`` (sometimes a tuple or not a list at all)."""
        items = [self(pool) for _ in range(self.count(LIMITS.max_list_items))]
        return self.draw(st.sampled_from([tuple(items), "a"])) if self.odd() else items

    def attributes(self) -> Any:
        """An attribute map of plain (or wrapped) values."""
        keys = ATTRIBUTE_KEYS[1] if self.odd() else ATTRIBUTE_KEYS[0]
        return {
            self.draw(sampled(keys)): self(ATTRIBUTE_VALUES)
            for _ in range(self.count(LIMITS.max_attributes))
        }


ROLES = (["agent", "senior", "ROLE_MANAGER"], ["ROLE_UNSPECIFIED", 2, 0, "boss", "Agent"])
STATUSES = (["available", "busy", "AGENT_STATUS_AWAY"], ["AGENT_STATUS_UNSPECIFIED", 1, "gone"])
LEVELS = ([0, 3, 10], [-1, 11, 3.0, True, "3"])
CAPACITIES = ([0, 5, 10_000], [-1, 10_001, 2.0])


def agent_dict(pick: Pick, index: int) -> Any:
    """An agent's JSON form, mostly valid."""
    draw = pick.draw
    fields = {
        "agent_id": pick(([f"agent-{index}"], [*CODES[1], "agent-0"])),
        "role": pick(ROLES),
        "status": pick(STATUSES),
        "licences": [
            pick.obj(
                {
                    "type": pick(CODES),
                    "jurisdiction": pick(JURISDICTIONS),
                    "expires_on": pick(DATES),
                    "multistate": pick(([True, False], ["true", 1])),
                },
                frozenset({"multistate"}),
            )
            for _ in range(pick.count(LIMITS.max_list_items))
        ],
        "territories": pick.strings(CODES),
        "skills": [
            pick.obj(
                {"name": pick(([f"skill-{i}"], ["skill-0", *CODES[1]])), "level": pick(LEVELS)},
                frozenset({"level"}),
            )
            for i in range(pick.count(LIMITS.max_list_items))
        ],
        "languages": pick.strings(LANGUAGES),
        "capacity": pick.obj(
            {"max": pick(CAPACITIES), "active": pick(CAPACITIES)}, frozenset({"max", "active"})
        ),
        "last_assigned_at": pick(STAMPS),
        "teams": pick.strings(CODES),
        "seniority": pick(([0, 7, 100], [-1, 101, 7.0])),
        "attributes": pick.attributes(),
    }
    optional = frozenset(fields) - {"agent_id", "status", "capacity"}
    if draw(BOOLEANS):
        fields["role"] = None  # null is "not given", as absent
    return pick.obj(fields, optional)


@st.composite
def roster_dicts(draw: Any, *, valid: bool = False) -> Any:
    """A roster's JSON form of 0-4 agents (the limit is 3), ids sometimes repeated."""
    pick = Pick(draw, valid=valid)
    agents = [agent_dict(pick, i) for i in range(pick.count(LIMITS.max_agents))]
    return pick.obj(
        {"snapshot_id": pick(IDENTIFIERS), "taken_at": pick(STAMPS), "agents": agents},
        frozenset({"agents"}),
    )


@st.composite
def case_dicts(draw: Any, *, valid: bool = False) -> Any:
    """A case's JSON form, mostly valid, with near-miss values mixed in."""
    pick = Pick(draw, valid=valid)
    fields = {
        "case_id": pick(IDENTIFIERS),
        "created_at": pick(STAMPS),
        "channel": pick((["phone", "CHANNEL_EMAIL"], ["CHANNEL_UNSPECIFIED", 1, "fax"])),
        "intent": pick((["clinical", "INTENT_BILLING"], [0, "Clinical"])),
        "urgency": pick((["urgent", "URGENCY_ROUTINE"], [3, "soon"])),
        "classification_confidence": pick(([0.0, -0.0, 0.25, 1.0, 1], [-1.0, 1.5, math.nan])),
        "patient_location": pick(JURISDICTIONS),
        "region": pick(CODES),
        "tier": pick((["standard", "TIER_GOLD"], ["TIER_UNSPECIFIED", 2, "gold "])),
        "required_skills": [
            pick.obj({"name": pick(CODES), "min_level": pick(LEVELS)}, frozenset({"min_level"}))
            for _ in range(pick.count(LIMITS.max_list_items))
        ],
        "preferred_language": pick(LANGUAGES),
        "sentiment": [
            pick.obj(
                {"score": pick(([-1.0, -0.0, 0.5, 1.0, 1], [1.5, math.nan])), "at": pick(STAMPS)},
                frozenset({"score"}),
            )
            for _ in range(pick.count(LIMITS.max_sentiment_readings))
        ],
        "sla_clocks": [
            pick.obj(
                {
                    "name": pick(([f"clock-{i}"], ["clock-0", "x y", ""])),
                    "started_at": pick(STAMPS),
                    "deadline": pick(STAMPS),
                }
            )
            for i in range(pick.count(LIMITS.max_sla_clocks))
        ],
        "flags": pick.strings(FLAGS),
        "attributes": pick.attributes(),
        "waiting_since": pick(STAMPS),
        "declined_agents": pick.strings(CODES),
        "preferred_agents": [
            pick.obj(
                {
                    "agent_id": pick(([f"agent-{i}"], ["agent-0", "", "a b"])),
                    "reason": pick((["previous_contact", "CONTINUITY_REASON_CARE_TEAM"], [0, "x"])),
                    "last_contact_at": pick(STAMPS),
                },
                frozenset({"last_contact_at"}),
            )
            for i in range(pick.count(LIMITS.max_list_items))
        ],
    }
    required = {"case_id", "created_at", "channel", "intent", "urgency"}
    return pick.obj(fields, frozenset(fields) - required)


ALL_ODD = [
    *ODD,
    *CODES[1],
    *JURISDICTIONS[1],
    *LANGUAGES[1],
    *FLAGS[1],
    *IDENTIFIERS[1],
    *DATES[1],
    *STAMPS[1],
    *ATTRIBUTE_VALUES[1],
    *ROLES[1],
    *STATUSES[1],
    *LEVELS[1],
    *CAPACITIES[1],
    10_001,
    101,
    2,
    "consent_missing",
    {"string_value": "x"},
]


NEAR_NUMBERS = [-1, 11, 101, 10_001, 1.5, 3.0, True, math.nan, -0.0, 1e15, 1.5e15]
"""Just outside each number's range or type (beside ``ALL_ODD``, so each is drawn often)."""
REPLACEMENTS = st.sampled_from(NEAR_NUMBERS) | st.sampled_from(ALL_ODD)
CHANGES = st.sampled_from(["value", "value", "value", "drop", "double", "add"])
ADDED_KEYS = st.sampled_from(["extra", "agentID", "name"])


def _places(value: Any) -> list[tuple[Any, Any]]:
    """Every (container, key or index) inside a JSON value, depth first."""
    found: list[tuple[Any, Any]] = []
    keys = list(value) if isinstance(value, dict) else range(len(value))
    for key in keys:
        found.append((value, key))
        if isinstance(value[key], dict | list):
            found += _places(value[key])
    return found


@st.composite
def one_change(draw: Any, valid: st.SearchStrategy[Any]) -> Any:
    """A wholly valid dict with one change: a value replaced, a key dropped, doubled or added."""
    data = draw(valid)
    places = _places(data)
    if not places:
        return data
    container, key = draw(st.sampled_from(places))
    change = draw(CHANGES)
    if change == "value":
        container[key] = draw(REPLACEMENTS)
    elif change == "drop" and isinstance(container, dict):
        del container[key]
    elif change == "double" and isinstance(container, dict):
        container[codec.lower_camel(key) if "_" in key else key + "_"] = container[key]
    elif isinstance(container, dict):
        container[draw(ADDED_KEYS)] = 1
    else:  # a list: one item more (a duplicate, or over a limit)
        container.append(container[key])
    return data


@AGREEMENT
@given(one_change(roster_dicts(valid=True)))
def test_roster_with_one_change_agrees_or_hands_over(data: Any) -> None:
    """A valid roster with one odd value, key or item: the strict value, or handed over."""
    check_agreement(
        data,
        lambda: fast_dict.roster_from_dict(data, LIMITS),
        lambda: codec.parse_roster(data, limits=LIMITS),
    )


@AGREEMENT
@given(one_change(case_dicts(valid=True)))
def test_case_with_one_change_agrees_or_hands_over(data: Any) -> None:
    """A valid case with one odd value, key or item: the strict value, or handed over."""
    check_agreement(
        data,
        lambda: fast_dict.case_from_dict(data, LIMITS),
        lambda: codec.parse_case(data, limits=LIMITS, safeguarding_flags=frozenset({"vip"})),
    )


@contextmanager
def strict_only() -> Iterator[None]:
    """``codec`` with its fast path doubting everything: the strict parser alone."""

    def doubt(*_: object) -> None:
        raise fast_dict.Doubt

    with (
        patch.object(codec, "case_from_dict", doubt),
        patch.object(codec, "roster_from_dict", doubt),
    ):
        yield


def outcome(parse: Callable[[], T]) -> T | tuple[FieldViolation, ...]:
    """The parsed value, or the violations raised."""
    try:
        return parse()
    except RequestError as exc:
        return exc.violations


def check_agreement(data: Any, fast: Callable[[], Any], strict: Callable[[], Any]) -> bool:
    """Fast equals strict (value and canonical JSON) or doubts; returns whether it doubted."""
    with strict_only():
        expected = outcome(strict)
    assert expected == outcome(strict)  # the public parser, fast path first
    try:
        value = fast()
    except fast_dict.Doubt:
        return True
    assert not isinstance(expected, tuple), f"fast path accepted what strict refused: {data!r}"
    assert expected == value
    as_dict = roster_to_dict if hasattr(value, "agents") else case_to_dict
    assert canonical_json(as_dict(expected)) == canonical_json(as_dict(value))
    return False


@AGREEMENT
@given(roster_dicts())
def test_roster_fast_path_agrees_or_hands_over(data: Any) -> None:
    """A roster dict parses to the strict value or is handed to the strict parser."""
    check_agreement(
        data,
        lambda: fast_dict.roster_from_dict(data, LIMITS),
        lambda: codec.parse_roster(data, limits=LIMITS),
    )


@AGREEMENT
@given(case_dicts())
def test_case_fast_path_agrees_or_hands_over(data: Any) -> None:
    """A case dict parses to the strict value or is handed to the strict parser."""
    check_agreement(
        data,
        lambda: fast_dict.case_from_dict(data, LIMITS),
        lambda: codec.parse_case(data, limits=LIMITS, safeguarding_flags=frozenset({"vip"})),
    )


@AGREEMENT
@given(roster_dicts(valid=True))
def test_valid_roster_takes_the_fast_path(data: Any) -> None:
    """A wholly valid roster without duplicate ids is never handed over."""
    agents = data.get("agents", [])
    if len({a.get("agent_id") for a in agents}) == len(agents):
        assert (
            check_agreement(
                data,
                lambda: fast_dict.roster_from_dict(data, LIMITS),
                lambda: codec.parse_roster(data, limits=LIMITS),
            )
            is False
        )


@AGREEMENT
@given(case_dicts(valid=True))
def test_valid_case_takes_the_fast_path(data: Any) -> None:
    """A wholly valid case with distinct clock and preferred agent names is never handed over."""
    assert (
        check_agreement(
            data,
            lambda: fast_dict.case_from_dict(data, LIMITS),
            lambda: codec.parse_case(data, limits=LIMITS),
        )
        is False
    )
