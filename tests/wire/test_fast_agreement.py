"""The fast proto -> domain path agrees with the strict path on valid and near-valid messages.

Oracle: ``wire.convert``'s strict conversion (message -> JSON-shaped data -> ``domain.codec``)
with the fast path switched off. For every generated message, the fast path either returns
exactly the strict path's value (same domain object, same canonical JSON) or doubts; and
``wire.convert`` (fast first) returns the strict path's value or raises its very violations.
"""

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.domain.case import Case
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.fingerprint import canonical_json, case_to_dict, roster_to_dict
from caseroute.domain.limits import InputLimits
from caseroute.domain.roster import Roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert, fast
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
AGREEMENT = settings(max_examples=400)
NEAR_MISSES = settings(max_examples=50)

CODES = [
    "a1",
    "US-TX",
    "RN",
    "x:y/z.w_v",
    "x" * 12,
    "x" * 13,
    "",
    " a",
    "a\n",
    "a b",
    "-a",
    "é",
    "\uff41",
]
JURISDICTIONS = [
    "US-TX",
    " us-tx ",
    "gb-eng-nw",
    "u\u017f-tx",
    "\uff55\uff53",
    "US",
    "U",
    "US-",
    "US-TX\n",
    "",
    "US-TOOLONGCODE",
]
LANGUAGES = [
    "en",
    "EN_gb",
    " es-MX ",
    "zh-hant",
    "\u0130n",
    "e",
    "en-",
    "en\n",
    "",
    "en-" + "a" * 12,
]
FLAGS = [
    "safeguarding",
    "Consent-Missing",
    " vip ",
    "\uff56\uff49\uff50",
    "\u017fafeguarding",
    "a.b:c/d",
    "",
    " ",
    "a b",
    "a\n",
    "x" * 12,
    "X" * 13,
    "\u200b",
    "\ufb03" * 5,
    "vip" + " " * 12,
]
IDENTIFIERS = ["C-1", "case 1", "x" * 12, "x" * 13, "", " ", "é", "a\u200b", "a\x7f", "tab\t"]
DATES = ["2027-01-01", "20270101", "2027-W01-1", "2027-13-01", "", "x" * 70, "2027-01-01T00"]
INTS = [-1, 0, 1, 3, 10, 11, 100, 101, 10_000, 10_001]
FLOATS = [-1.5, -1.0, -0.0, 0.0, 0.25, 1.0, 1.5, math.nan, math.inf, -math.inf, 1e15, 1.5e15]
SECONDS = [0, 1_795_000_000, -62135596800, 253402300799, -62135596801, 253402300800]
NANOS = [0, 1, 999_999_999, -1, 10**9]
ATTRIBUTE_KEYS = ["tier", "b_1", "_x", "A", "1a", "x" * 13]

# Strategies are built once, not on every draw (tests/sampling.py): building them per draw
# spent most of these tests' time in Hypothesis's own strategy caching and validation.
BOOLEANS = st.booleans()
UNIT = st.floats(0, 1)
ONE_IN_SIX = st.integers(0, 5)


class Pick:
    """Draws one example's values: valid ones, and odd ones in one field or in many.

    Modes: wholly valid (the fast path must then give the strict value; the tests then
    change one field, ``ROSTER_CHANGES``/``CASE_CHANGES``) and odd values at a rate of 30%.
    """

    def __init__(self, draw: Any, *, valid: bool = False) -> None:
        """Draw this example's mode (``valid``: always wholly valid)."""
        self.draw = draw
        self.many = not valid and draw(sampled([False, False, True]))

    def odd(self) -> bool:
        """Whether the next value is an odd one."""
        return self.many and self.draw(UNIT) < 0.3

    def __call__(self, valid: list[T], odd: list[T]) -> T:
        """A value from ``valid``, or from ``odd`` at the example's rate."""
        value: T = self.draw(sampled(odd if self.odd() else valid))
        return value

    def count(self, most: int) -> int:
        """A list's length: within its limit, or one over it at the odd rate."""
        count: int = self.draw(st.integers(0, most + 1 if self.odd() else most))
        return count

    def timestamp(self, msg: Any, field: str, present: float = 0.5) -> None:
        """Set ``msg.field`` (when drawn present; a required one is missing at the odd rate)."""
        if (present == 1.0 and not self.odd()) or self.draw(UNIT) < present:
            ts = getattr(msg, field)
            ts.seconds = self(SECONDS[:4], SECONDS[4:])
            ts.nanos = self(NANOS[:3], NANOS[3:])

    def attributes(self, target: Any) -> None:
        """Fill an attribute map."""
        for _ in range(self.count(LIMITS.max_attributes)):
            value = target[self(ATTRIBUTE_KEYS[:3], ATTRIBUTE_KEYS[3:])]
            kind = self(["string", "number", "bool"], ["unset"])
            if kind == "string":
                value.string_value = self(["", "plain", "é\n\x00"], ["x" * 11])
            elif kind == "number":
                value.number_value = self(FLOATS[:7] + FLOATS[10:11], FLOATS[7:10] + FLOATS[11:])
            elif kind == "bool":
                value.bool_value = self.draw(BOOLEANS)


@st.composite
def agent_msgs(draw: Any, pick: Pick | None = None, index: int = 0) -> pb.Agent:
    """An Agent message, mostly valid, with near-miss values mixed in."""
    pick = pick or Pick(draw)
    numbers: dict[str, Any] = {
        "role": pick([0, 1, 2, 3], [4, -1]),
        "status": pick([1, 2, 3, 4], [0, 5]),
        "seniority": pick([0, 7, 100], [-1, 101]),
    }
    msg = pb.Agent(agent_id=pick([f"agent-{index}"], CODES), **numbers)
    for _ in range(pick.count(LIMITS.max_list_items)):
        msg.licences.add(
            type=pick(CODES[:4], CODES[4:]),
            jurisdiction=pick(JURISDICTIONS[:6], JURISDICTIONS[6:]),
            expires_on=pick(DATES[:3], DATES[3:]),
            multistate=draw(BOOLEANS),
        )
    for name in ("territories", "teams"):
        getattr(msg, name).extend(
            pick(CODES[:5], CODES[5:]) for _ in range(pick.count(LIMITS.max_list_items))
        )
    for i in range(pick.count(LIMITS.max_list_items)):
        msg.skills.add(name=pick([f"skill-{i}"], CODES), level=pick([0, 3, 10], [-1, 11]))
    msg.languages.extend(
        pick(LANGUAGES[:4], LANGUAGES[4:]) for _ in range(pick.count(LIMITS.max_list_items))
    )
    if not pick.odd():
        msg.capacity.SetInParent()
        msg.capacity.max = pick([0, 5, 10_000], [-1, 10_001])
        msg.capacity.active = pick([0, 2], [-1, 10_001])
    pick.timestamp(msg, "last_assigned_at")
    pick.attributes(msg.attributes)
    return msg


@st.composite
def roster_msgs(draw: Any, *, valid: bool = False) -> pb.Roster:
    """A Roster message of 0-4 agents (the limit is 3), ids sometimes repeated."""
    pick = Pick(draw, valid=valid)
    msg = pb.Roster(snapshot_id=pick(IDENTIFIERS[:3], IDENTIFIERS[3:]))
    pick.timestamp(msg, "taken_at", present=1.0)
    msg.agents.extend(draw(agent_msgs(pick, i)) for i in range(pick.count(LIMITS.max_agents)))
    return msg


@st.composite
def case_msgs(draw: Any, *, valid: bool = False) -> pb.Case:
    """A Case message, mostly valid, with near-miss values mixed in."""
    pick = Pick(draw, valid=valid)
    numbers: dict[str, Any] = {
        "channel": pick([1, 2, 3, 4], [0, 5]),
        "intent": pick([1, 2, 6], [0, 7]),
        "urgency": pick([1, 2, 3], [0, 4]),
        "tier": pick([0, 1, 2, 3], [4, -1]),
    }
    msg = pb.Case(case_id=pick(IDENTIFIERS[:3], IDENTIFIERS[3:]), **numbers)
    pick.timestamp(msg, "created_at", present=1.0)
    if draw(BOOLEANS):
        msg.classification_confidence = pick([0.0, -0.0, 0.25, 1.0], [-1.0, 1.5, math.nan])
    if draw(BOOLEANS):
        msg.patient_location = pick(JURISDICTIONS[:6], JURISDICTIONS[6:])
    if draw(BOOLEANS):
        msg.region = pick(CODES[:5], CODES[5:])
    if draw(BOOLEANS):
        msg.preferred_language = pick(LANGUAGES[:4], LANGUAGES[4:])
    for _ in range(pick.count(LIMITS.max_list_items)):
        msg.required_skills.add(name=pick(CODES[:5], CODES[5:]), min_level=pick([0, 10], [11]))
    for _ in range(pick.count(LIMITS.max_sentiment_readings)):
        reading = msg.sentiment.add(score=pick([-1.0, -0.0, 0.5, 1.0], [1.5, math.nan]))
        pick.timestamp(reading, "at", present=1.0)
    for i in range(pick.count(LIMITS.max_sla_clocks)):
        clock = msg.sla_clocks.add(name=pick([f"clock-{i}"], ["rtt", "x y", ""]))
        pick.timestamp(clock, "started_at", present=1.0)
        pick.timestamp(clock, "deadline", present=1.0)
    msg.flags.extend(pick(FLAGS[:6], FLAGS[6:]) for _ in range(pick.count(LIMITS.max_list_items)))
    pick.attributes(msg.attributes)
    pick.timestamp(msg, "waiting_since", present=0.3)
    msg.declined_agents.extend(
        pick(CODES[:5], CODES[5:]) for _ in range(pick.count(LIMITS.max_list_items))
    )
    for i in range(pick.count(LIMITS.max_list_items)):
        preferred = msg.preferred_agents.add(
            agent_id=pick([f"agent-{i}"], ["agent-0", "", "a b"]), reason=pick([1, 2, 3], [0, 4])
        )
        pick.timestamp(preferred, "last_contact_at", present=0.3)
    return msg


def _odd_timestamp(ts: Any, draw: Any) -> None:
    ts.seconds = draw(sampled(SECONDS))
    ts.nanos = draw(sampled(NANOS))


def _odd_attribute(target: Any, draw: Any) -> None:
    target.clear()
    key = draw(sampled(ATTRIBUTE_KEYS))
    kind = draw(sampled(["string", "number", "unset", "many"]))
    if kind == "string":
        target[key].string_value = draw(sampled(["x" * 10, "x" * 11, "é\n"]))
    elif kind == "number":
        target[key].number_value = draw(sampled(FLOATS))
    elif kind == "unset":
        target[key].SetInParent()
    else:
        for extra in ("m1", "m2", "m3"):
            target[extra].bool_value = True


def _odd_clock(msg: pb.Case, draw: Any) -> None:
    clock = msg.sla_clocks.add(name=draw(sampled(["clock-0", "x y", ""])))
    clock.started_at.seconds = 0
    if draw(BOOLEANS):
        _odd_timestamp(clock.deadline, draw)
    else:
        clock.deadline.seconds = 60


Change = Callable[[Any, Any], object]
"""Sets one field of a message (or of its first agent) to a value drawn from an odd pool."""


def _agent_change(change: Callable[[pb.Agent, Any], object]) -> Change:
    def apply(msg: pb.Roster, draw: Any) -> None:
        if not msg.agents:
            msg.agents.add()
        change(msg.agents[draw(st.integers(0, len(msg.agents) - 1))], draw)

    return apply


def _twin_agent(msg: pb.Roster, draw: Any) -> None:
    msg.agents.add().CopyFrom(msg.agents[0] if msg.agents else pb.Agent(agent_id="a"))
    msg.agents[-1].agent_id = draw(sampled([msg.agents[0].agent_id, "a"]))


def _more_agents(msg: pb.Roster, _: Any) -> None:
    while len(msg.agents) <= LIMITS.max_agents:
        msg.agents.add().CopyFrom(msg.agents[0] if msg.agents else pb.Agent(agent_id="a"))
        msg.agents[-1].agent_id = f"extra-{len(msg.agents)}"


def _set(field: str, pool: list[Any]) -> Callable[[Any, Any], None]:
    values = st.sampled_from(pool)

    def apply(msg: Any, draw: Any) -> None:
        setattr(msg, field, draw(values))

    return apply


def _append(field: str, pool: list[Any]) -> Callable[[Any, Any], None]:
    """Replace the list with one or two values from ``pool``, or with too many."""
    replacements = st.lists(st.sampled_from(pool), min_size=1, max_size=2)

    def apply(msg: Any, draw: Any) -> None:
        values = getattr(msg, field)
        del values[:]
        values.extend(draw(replacements))
        if draw(ONE_IN_SIX) == 0:
            values.extend([values[0]] * LIMITS.max_list_items)

    return apply


def _clear(field: str) -> Callable[[Any, Any], None]:
    return lambda msg, _: msg.ClearField(field)


ROSTER_CHANGES: list[Change] = [
    _set("snapshot_id", IDENTIFIERS),
    _clear("taken_at"),
    lambda msg, draw: _odd_timestamp(msg.taken_at, draw),
    _twin_agent,
    _more_agents,
    _agent_change(_set("agent_id", CODES)),
    _agent_change(_set("role", [0, 1, 3, 4, -1])),
    _agent_change(_set("status", [0, 4, 5, -1])),
    _agent_change(_set("seniority", INTS)),
    _agent_change(_clear("capacity")),
    _agent_change(lambda a, draw: setattr(a.capacity, "max", draw(sampled(INTS)))),
    _agent_change(lambda a, draw: setattr(a.capacity, "active", draw(sampled(INTS)))),
    _agent_change(
        lambda a, draw: a.licences.add(
            type=draw(sampled(CODES)),
            jurisdiction=draw(sampled(JURISDICTIONS)),
            expires_on=draw(sampled(DATES)),
        )
    ),
    _agent_change(_append("territories", CODES)),
    _agent_change(_append("teams", CODES)),
    _agent_change(_append("languages", LANGUAGES)),
    _agent_change(
        lambda a, draw: a.skills.add(
            name=draw(sampled([*CODES, "skill-0"])), level=draw(sampled(INTS))
        )
    ),
    _agent_change(lambda a, draw: _odd_timestamp(a.last_assigned_at, draw)),
    _agent_change(lambda a, draw: _odd_attribute(a.attributes, draw)),
]
CASE_CHANGES: list[Change] = [
    _set("case_id", IDENTIFIERS),
    _clear("created_at"),
    lambda msg, draw: _odd_timestamp(msg.created_at, draw),
    _set("channel", [0, 4, 5, -1]),
    _set("intent", [0, 6, 7]),
    _set("urgency", [0, 3, 4]),
    _set("tier", [0, 3, 4, -1]),
    _set("classification_confidence", FLOATS),
    _set("patient_location", JURISDICTIONS),
    _set("region", CODES),
    _set("preferred_language", LANGUAGES),
    lambda msg, draw: msg.required_skills.add(
        name=draw(sampled(CODES)), min_level=draw(sampled(INTS))
    ),
    lambda msg, draw: _odd_timestamp(msg.sentiment.add(score=draw(sampled(FLOATS))).at, draw),
    lambda msg, _: msg.sentiment.add(score=0.5),
    _odd_clock,
    _append("flags", FLAGS),
    lambda msg, draw: _odd_attribute(msg.attributes, draw),
    lambda msg, draw: _odd_timestamp(msg.waiting_since, draw),
    _append("declined_agents", CODES),
    lambda msg, draw: msg.preferred_agents.add(
        agent_id=draw(sampled(["agent-0", "", "a b", "z"])),
        reason=draw(sampled([0, 1, 3, 4])),
    ),
]


@st.composite
def changed(draw: Any, messages: st.SearchStrategy[Any], change: Change) -> Any:
    """A wholly valid message with ``change`` applied: one field now a near miss (or not)."""
    msg = draw(messages)
    change(msg, draw)
    return msg


@contextmanager
def strict_only() -> Iterator[None]:
    """``wire.convert`` with the fast path doubting everything: the strict path alone."""
    with (
        patch.object(fast, "case_from_proto", side_effect=fast.Doubt),
        patch.object(fast, "roster_from_proto", side_effect=fast.Doubt),
    ):
        yield


def outcome(convert_one: Callable[[], T]) -> T | list[FieldViolation]:
    """The converted value, or the violations it was refused with."""
    try:
        return convert_one()
    except RequestError as exc:
        return list(exc.violations)


def fast_or_none(convert_one: Callable[[], T]) -> T | None:
    """The fast path's value, or None when it doubts."""
    try:
        return convert_one()
    except fast.Doubt:
        return None


def check_case(msg: pb.Case, guarded: frozenset[str]) -> None:
    """The fast case is the strict case (or a doubt); convert's outcome is the strict one."""
    with strict_only():
        strict = outcome(
            lambda: convert.case_from_proto(msg, limits=LIMITS, safeguarding_flags=guarded)
        )
    quick = fast_or_none(lambda: fast.case_from_proto(msg, LIMITS))
    if quick is not None:
        assert isinstance(strict, Case)
        assert quick == strict
        assert canonical_json(case_to_dict(quick)) == canonical_json(case_to_dict(strict))
    both = outcome(lambda: convert.case_from_proto(msg, limits=LIMITS, safeguarding_flags=guarded))
    assert strict == both


def check_roster(msg: pb.Roster) -> None:
    """The fast roster is the strict roster (or a doubt); convert's outcome is the strict one."""
    with strict_only():
        strict = outcome(lambda: convert.roster_from_proto(msg, limits=LIMITS))
    quick = fast_or_none(lambda: fast.roster_from_proto(msg, LIMITS))
    if quick is not None:
        assert isinstance(strict, Roster)
        assert quick == strict
        assert canonical_json(roster_to_dict(quick)) == canonical_json(roster_to_dict(strict))
    assert strict == outcome(lambda: convert.roster_from_proto(msg, limits=LIMITS))


@AGREEMENT
@given(case_msgs(), st.sampled_from([frozenset(), frozenset({"vip"})]))
def test_fast_case_is_the_strict_case_or_a_doubt(msg: pb.Case, guarded: frozenset[str]) -> None:
    """A Case the fast path accepts is the strict path's case; otherwise the strict path decides."""
    check_case(msg, guarded)


@AGREEMENT
@given(roster_msgs())
def test_fast_roster_is_the_strict_roster_or_a_doubt(msg: pb.Roster) -> None:
    """A Roster the fast path accepts is the strict path's roster; else the strict path decides."""
    check_roster(msg)


@pytest.mark.parametrize("change", range(len(CASE_CHANGES)))
@NEAR_MISSES
@given(data=st.data())
def test_a_case_with_one_near_miss_is_the_strict_case_or_a_doubt(
    change: int, data: st.DataObject
) -> None:
    """One field of a valid Case changed to a near miss: fast agrees with strict, or doubts."""
    check_case(data.draw(changed(case_msgs(valid=True), CASE_CHANGES[change])), frozenset())


@pytest.mark.parametrize("change", range(len(ROSTER_CHANGES)))
@NEAR_MISSES
@given(data=st.data())
def test_a_roster_with_one_near_miss_is_the_strict_roster_or_a_doubt(
    change: int, data: st.DataObject
) -> None:
    """One field of a valid Roster changed to a near miss: fast agrees with strict, or doubts."""
    check_roster(data.draw(changed(roster_msgs(valid=True), ROSTER_CHANGES[change])))
