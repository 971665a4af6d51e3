"""The fast proto -> domain path: each normalisation it applies, each value it doubts.

A doubted value goes to the strict path, which refuses it with exactly its usual field error:
each refusal is compared with the strict path's own (the wording is ``domain.codec``'s to pin).
"""

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest

from caseroute.domain.case import ContinuityReason, PreferredAgent, SentimentReading
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.domain.roster import Licence, Role, Roster
from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE
from caseroute.testing import NOW, make_agent, make_case, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert, fast

LIMITS = InputLimits(max_agents=2, max_id_chars=16, max_list_items=2, max_attributes=1)


def case_msg(**fields: Any) -> pb.Case:
    """The test case as a message, then ``fields`` set on it."""
    msg = convert.case_to_proto(make_case())
    for key, value in fields.items():
        setattr(msg, key, value)
    return msg


def roster_msg(edit: Callable[[pb.Agent], object] = lambda _: None) -> pb.Roster:
    """A two-agent roster message, ``edit`` applied to its first agent."""
    msg = convert.roster_to_proto(make_roster(make_agent("a1"), make_agent("a2")))
    edit(msg.agents[0])
    return msg


def test_a_plain_case_and_roster_take_the_fast_path_to_the_strict_values() -> None:
    """Valid messages convert on the fast path to exactly the values they were built from."""
    roster = make_roster(make_agent("a1"), make_agent("a2", role=Role.SENIOR, seniority=7))
    assert make_case() == fast.case_from_proto(case_msg(), DEFAULT_LIMITS)
    assert roster == fast.roster_from_proto(convert.roster_to_proto(roster), DEFAULT_LIMITS)


def test_fast_case_normalises_flags_jurisdiction_and_language() -> None:
    """Flags NFKC, case-folded, trimmed, - to _ (duplicates collapse); US-TX and en-gb folded."""
    msg = case_msg(patient_location=" us-tx ", preferred_language=" EN_gb ")
    msg.flags.extend(["Consent-Missing", " \uff36\uff29\uff30 ", "vip", "\u017fafeguarding"])
    case = fast.case_from_proto(msg, DEFAULT_LIMITS)
    assert (frozenset({"consent_missing", "vip", "safeguarding"}), "US-TX", "en-gb") == (
        case.flags,
        case.patient_location,
        case.preferred_language,
    )


def test_fast_roster_normalises_licence_jurisdictions_and_languages() -> None:
    """Licence jurisdictions trimmed and upper-cased; languages folded; sets collapse repeats."""

    def edit(agent: pb.Agent) -> None:
        agent.licences[0].jurisdiction = " gb-eng "
        agent.languages[:] = ["EN_gb", "en-GB", " es "]
        agent.territories[:] = ["US-TX", "US-TX"]

    agent = fast.roster_from_proto(roster_msg(edit), DEFAULT_LIMITS).agents[0]
    assert (
        (Licence("RN", "GB-ENG", date(2030, 1, 1)),),
        frozenset({"en-gb", "es"}),
        frozenset({"US-TX"}),
    ) == (agent.licences, agent.languages, agent.territories)


def test_fast_case_fills_defaults_and_sorts_sentiment_oldest_first_lowest_last() -> None:
    """Unset tier/confidence/role are the strict defaults; at one instant the lowest score last."""
    msg = case_msg(tier=pb.TIER_UNSPECIFIED)
    msg.ClearField("classification_confidence")
    later, earlier = NOW - timedelta(minutes=1), NOW - timedelta(minutes=9)
    for score, at in ((0.1, later), (0.2, earlier), (0.3, later)):
        msg.sentiment.add(score=score, at=convert.datetime_to_timestamp(at))
    case = fast.case_from_proto(msg, DEFAULT_LIMITS)
    assert (
        "standard",
        1.0,
        (
            SentimentReading(0.2, earlier),
            SentimentReading(0.3, later),
            SentimentReading(0.1, later),
        ),
    ) == (case.tier.value, case.classification_confidence, case.sentiment)


def test_fast_case_keeps_nanoseconds_as_protobuf_does() -> None:
    """A Timestamp's nanos are truncated to microseconds, as Timestamp.ToDatetime does."""
    msg = case_msg()
    msg.waiting_since.seconds, msg.waiting_since.nanos = 1_795_000_000, 123_456_789
    assert datetime(2026, 11, 18, 11, 6, 40, 123456, tzinfo=UTC) == (
        fast.case_from_proto(msg, DEFAULT_LIMITS).waiting_since
    )


def test_fast_case_reads_preferred_agents_and_attributes() -> None:
    """Preferred agents (with and without last contact) and each attribute kind convert."""
    msg = case_msg()
    msg.preferred_agents.add(agent_id="a2", reason=pb.CONTINUITY_REASON_CARE_TEAM)
    msg.attributes["x"].number_value = 2.5
    msg.attributes["y"].bool_value = True
    msg.attributes["z"].string_value = "é"
    case = fast.case_from_proto(msg, DEFAULT_LIMITS)
    assert (
        (PreferredAgent("a2", ContinuityReason.CARE_TEAM),),
        {"x": 2.5, "y": True, "z": "é"},
    ) == (case.preferred_agents, case.attributes)


def _clear(field: str) -> Callable[[Any], object]:
    return lambda msg: msg.ClearField(field)


CASE_REFUSALS: list[tuple[str, Callable[[pb.Case], object], str]] = [
    (
        "unsafe case id",
        lambda m: setattr(m, "case_id", "C\u200b1"),
        "case.case_id",
    ),
    (
        "blank case id",
        lambda m: setattr(m, "case_id", " "),
        "case.case_id",
    ),
    ("no created_at", _clear("created_at"), "case.created_at"),
    (
        "unset channel",
        lambda m: setattr(m, "channel", 0),
        "case.channel",
    ),
    (
        "unknown tier",
        lambda m: setattr(m, "tier", 9),
        "case.tier",
    ),
    (
        "nan confidence",
        lambda m: setattr(m, "classification_confidence", float("nan")),
        "case.classification_confidence",
    ),
    (
        "bad region",
        lambda m: setattr(m, "region", "US TX"),
        "case.region",
    ),
    (
        "too many flags",
        lambda m: m.flags.extend(["vip", "callback", "interpreter"]),
        "case.flags",
    ),
    (
        "duplicate sla clock",
        lambda m: m.sla_clocks.extend(
            [pb.SlaClock(name="rtt", started_at=m.created_at, deadline=m.created_at)] * 2
        ),
        "case.sla_clocks[1].name",
    ),
    (
        "reading without at",
        lambda m: m.sentiment.add(score=0.5),
        "case.sentiment[0].at",
    ),
    (
        "out-of-range waiting_since",
        lambda m: setattr(m.waiting_since, "nanos", -1),
        "case.waiting_since",
    ),
    (
        "attribute without a kind",
        lambda m: m.attributes["x"].SetInParent(),
        "case.attributes.x",
    ),
    (
        "preferred agent twice",
        lambda m: m.preferred_agents.extend(
            [pb.PreferredAgent(agent_id="a1", reason=pb.CONTINUITY_REASON_PREVIOUS_CONTACT)] * 2
        ),
        "case.preferred_agents[1].agent_id",
    ),
]


def strict_violations(convert_one: Callable[[], object]) -> list[FieldViolation]:
    """The violations the strict path alone (the fast path switched off) raises."""
    with (
        patch.object(fast, "case_from_proto", side_effect=fast.Doubt),
        patch.object(fast, "roster_from_proto", side_effect=fast.Doubt),
        pytest.raises(RequestError) as caught,
    ):
        convert_one()
    return list(caught.value.violations)


@pytest.mark.parametrize(
    ("edit", "field"), [c[1:] for c in CASE_REFUSALS], ids=[c[0] for c in CASE_REFUSALS]
)
def test_fast_case_leaves_each_invalid_value_to_the_strict_path(
    edit: Callable[[pb.Case], object], field: str
) -> None:
    """The fast path doubts; convert then raises the strict parser's one field-level error."""
    msg = case_msg()
    edit(msg)
    with pytest.raises(fast.Doubt):
        fast.case_from_proto(msg, LIMITS)
    with pytest.raises(RequestError) as caught:
        convert.case_from_proto(msg, limits=LIMITS)
    violations = list(caught.value.violations)
    assert ([field], violations) == (
        [v.field for v in violations],
        strict_violations(lambda: convert.case_from_proto(msg, limits=LIMITS)),
    )


def test_an_invalid_safeguarding_case_still_gets_the_notice_first() -> None:
    """A flagged case with a bad field is never routed: the strict path's notice leads."""
    msg = case_msg(region="US TX")
    msg.flags.append("Safeguarding")
    with pytest.raises(RequestError) as caught:
        convert.case_from_proto(msg)
    assert FieldViolation("case.flags", SAFEGUARDING_NOTICE) == caught.value.violations[0]


def test_a_valid_non_ascii_case_id_is_left_to_the_strict_path_which_accepts_it() -> None:
    """The fast path vouches only for ASCII ids; the strict path decides the rest."""
    msg = case_msg(case_id="cas-é")
    with pytest.raises(fast.Doubt):
        fast.case_from_proto(msg, DEFAULT_LIMITS)
    assert make_case(case_id="cas-é") == convert.case_from_proto(msg)


AGENT_REFUSALS: list[tuple[str, Callable[[pb.Agent], object], str]] = [
    (
        "empty agent id",
        lambda a: setattr(a, "agent_id", ""),
        "roster.agents[0].agent_id",
    ),
    (
        "twin agent id",
        lambda a: setattr(a, "agent_id", "a2"),
        "roster.agents[1].agent_id",
    ),
    (
        "unset status",
        lambda a: setattr(a, "status", 0),
        "roster.agents[0].status",
    ),
    (
        "unknown role",
        lambda a: setattr(a, "role", 7),
        "roster.agents[0].role",
    ),
    (
        "no capacity",
        _clear("capacity"),
        "roster.agents[0].capacity",
    ),
    (
        "negative active",
        lambda a: setattr(a.capacity, "active", -1),
        "roster.agents[0].capacity.active",
    ),
    (
        "skill level 11",
        lambda a: setattr(a.skills[0], "level", 11),
        "roster.agents[0].skills[0].level",
    ),
    (
        "skill twice",
        lambda a: a.skills.add(name="clinical-triage", level=1),
        "roster.agents[0].skills[1].name",
    ),
    (
        "seniority 101",
        lambda a: setattr(a, "seniority", 101),
        "roster.agents[0].seniority",
    ),
    (
        "bad jurisdiction",
        lambda a: setattr(a.licences[0], "jurisdiction", "Texas"),
        "roster.agents[0].licences[0].jurisdiction",
    ),
    (
        "bad expiry",
        lambda a: setattr(a.licences[0], "expires_on", "2030-02-30"),
        "roster.agents[0].licences[0].expires_on",
    ),
    (
        "long expiry",
        lambda a: setattr(a.licences[0], "expires_on", "2030-01-01" + " " * 60),
        "roster.agents[0].licences[0].expires_on",
    ),
    (
        "long territory",
        lambda a: a.territories.append("X" * 17),
        "roster.agents[0].territories[1]",
    ),
    (
        "bad language",
        lambda a: a.languages.append("english"),
        "roster.agents[0].languages[1]",
    ),
    (
        "infinite attribute",
        lambda a: setattr(a.attributes["score"], "number_value", float("inf")),
        "roster.agents[0].attributes.score",
    ),
    (
        "attribute key",
        lambda a: setattr(a.attributes["Score"], "bool_value", True),
        "roster.agents[0].attributes.Score",
    ),
]


@pytest.mark.parametrize(
    ("edit", "field"), [c[1:] for c in AGENT_REFUSALS], ids=[c[0] for c in AGENT_REFUSALS]
)
def test_fast_roster_leaves_each_invalid_agent_to_the_strict_path(
    edit: Callable[[pb.Agent], object], field: str
) -> None:
    """The fast path doubts; convert then raises the strict parser's one field-level error."""
    msg = roster_msg(edit)
    with pytest.raises(fast.Doubt):
        fast.roster_from_proto(msg, LIMITS)
    with pytest.raises(RequestError) as caught:
        convert.roster_from_proto(msg, limits=LIMITS)
    violations = list(caught.value.violations)
    assert ([field], violations) == (
        [v.field for v in violations],
        strict_violations(lambda: convert.roster_from_proto(msg, limits=LIMITS)),
    )


def test_fast_roster_leaves_a_roster_over_the_agent_limit_to_the_strict_path() -> None:
    """Three agents under a limit of two: one violation, as the strict parser words it."""
    msg = roster_msg()
    msg.agents.add().CopyFrom(msg.agents[0])
    with pytest.raises(fast.Doubt):
        fast.roster_from_proto(msg, LIMITS)
    with pytest.raises(RequestError) as caught:
        convert.roster_from_proto(msg, limits=LIMITS)
    assert [
        FieldViolation(
            "roster.agents",
            "has 3 agents; the limit is 2 (configurable: --max-agents): split the roster by "
            "team or territory",
        )
    ] == list(caught.value.violations)


def test_fast_roster_leaves_a_missing_snapshot_header_to_the_strict_path() -> None:
    """No snapshot_id and no taken_at: both named, as the strict parser names them."""
    msg = pb.Roster()
    with pytest.raises(fast.Doubt):
        fast.roster_from_proto(msg, LIMITS)
    with pytest.raises(RequestError) as caught:
        convert.roster_from_proto(msg, limits=LIMITS)
    assert [
        FieldViolation("roster.snapshot_id", "is required"),
        FieldViolation("roster.taken_at", "is required"),
    ] == list(caught.value.violations)


def test_protobuf_strings_never_hold_a_lone_surrogate() -> None:
    """The invariant fast.py relies on instead of the strict parser's surrogate check."""
    with pytest.raises(UnicodeEncodeError):
        pb.AttributeValue(string_value="\ud800")


def test_an_empty_roster_converts_on_the_fast_path() -> None:
    """A roster with no agents is valid (nobody eligible is the engine's business)."""
    roster = Roster("snap-T1", NOW, ())
    assert roster == fast.roster_from_proto(convert.roster_to_proto(roster), LIMITS)
