"""Every routing.proto message through wire/convert.py and back, field for field."""

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from caseroute.domain.case import (
    Case,
    Channel,
    Intent,
    RequiredSkill,
    SentimentReading,
    SlaClock,
    Tier,
    Urgency,
)
from caseroute.domain.codec import MAX_ABS_NUMBER
from caseroute.domain.decision import Decision
from caseroute.domain.dialect import record_input_to_wire
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role, Roster
from caseroute.engine.decide import decide
from caseroute.service import (
    DecideCommand,
    DecideResult,
    DecisionLog,
    DecisionQuery,
    RulesetRegistry,
    request_decision_id,
)
from caseroute.testing import (
    NOW,
    audited_core,
    make_agent,
    make_case,
    make_roster,
    reference_ruleset,
)
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from tests.code_texts import ALNUM, IDENTIFIER_REST, KEY_FIRST, KEY_REST, pattern_texts

RULESET = reference_ruleset()
PLACES = ["US-TX", "US-FL", "US-CA", "GB-ENG"]
SKILLS = ["clinical-triage", "billing", "medication-review"]

instants = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - the bound; timezones= makes values aware
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
# [A-Za-z0-9][A-Za-z0-9_.:/-]{0,10} and [a-z_][a-z0-9_]{0,8}, drawn without from_regex
# (the same strings, faster: tests/code_texts.py).
codes = pattern_texts(ALNUM, IDENTIFIER_REST, 10)
attribute_values = st.one_of(
    # Valid text only: a NUL is refused (pinned in tests/domain/test_attribute_nul.py), and
    # so is a lone surrogate (no UTF-8 for it: protobuf cannot carry it).
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    # Valid input only: the codec refuses numbers beyond MAX_ABS_NUMBER (a round trip of an
    # invalid case is a RequestError, pinned elsewhere).
    st.floats(-MAX_ABS_NUMBER, MAX_ABS_NUMBER).filter(lambda f: not f.is_integer()),
)
attributes = st.dictionaries(pattern_texts(KEY_FIRST, KEY_REST, 8), attribute_values, max_size=3)
cases = st.builds(
    Case,
    case_id=codes,
    created_at=instants,
    channel=st.sampled_from(list(Channel)),
    intent=st.sampled_from(list(Intent)),
    urgency=st.sampled_from(list(Urgency)),
    classification_confidence=st.floats(0, 1),
    patient_location=st.one_of(st.none(), st.sampled_from(PLACES)),
    region=st.one_of(st.none(), st.sampled_from(PLACES)),
    tier=st.sampled_from(list(Tier)),
    required_skills=st.lists(
        st.builds(RequiredSkill, st.sampled_from(SKILLS), st.integers(0, 5)),
        max_size=2,
        unique_by=lambda s: s.name,
    ).map(tuple),
    preferred_language=st.one_of(st.none(), st.sampled_from(["en", "es", "en-gb"])),
    sentiment=st.lists(st.builds(SentimentReading, st.floats(-1, 1), instants), max_size=3).map(
        lambda readings: tuple(sorted(readings, key=SentimentReading.order_key))  # canonical order
    ),
    sla_clocks=st.lists(
        st.builds(SlaClock, st.sampled_from(["ack", "rtt"]), instants, instants).filter(
            lambda c: c.started_at <= c.deadline
        ),
        max_size=2,
        unique_by=lambda c: c.name,
    ).map(tuple),
    flags=st.frozensets(st.sampled_from(["safeguarding", "vip", "consent_missing"]), max_size=2),
    attributes=attributes,
)
agents = st.builds(
    Agent,
    agent_id=codes,
    role=st.sampled_from(list(Role)),
    status=st.sampled_from(list(AgentStatus)),
    capacity=st.builds(Capacity, max=st.integers(0, 9), active=st.integers(0, 9)),
    licences=st.lists(
        st.builds(
            Licence,
            type=st.sampled_from(["RN", "LPN", "pharmacist"]),
            jurisdiction=st.sampled_from([*PLACES, "US"]),
            expires_on=st.dates(date(2000, 1, 1), date(2100, 1, 1)),
            multistate=st.booleans(),
        ),
        max_size=2,
    ).map(tuple),
    territories=st.frozensets(st.sampled_from([*PLACES, "US"]), max_size=2),
    skills=st.dictionaries(st.sampled_from(SKILLS), st.integers(0, 5), max_size=2),
    languages=st.frozensets(st.sampled_from(["en", "es", "fr"]), max_size=2),
    last_assigned_at=st.one_of(st.none(), instants),
    teams=st.frozensets(codes, max_size=2),
    seniority=st.integers(0, 40),
    attributes=attributes,
)
rosters = st.builds(
    Roster,
    snapshot_id=codes,
    taken_at=instants,
    agents=st.lists(agents, max_size=5, unique_by=lambda a: a.agent_id.casefold()).map(tuple),
)


@given(instant=instants)
def test_timestamps_round_trip_to_the_microsecond(instant: datetime) -> None:
    """A Timestamp holds an aware instant exactly (microseconds included)."""
    assert convert.timestamp_to_datetime(convert.datetime_to_timestamp(instant)) == instant


@given(case=cases)
def test_case_round_trips(case: Case) -> None:
    """Case -> pb.Case -> Case is the identity for every valid case."""
    assert convert.case_from_proto(convert.case_to_proto(case)) == case


@given(roster=rosters)
def test_roster_round_trips(roster: Roster) -> None:
    """Roster -> pb.Roster (with Agent, Licence, Skill, Capacity) -> Roster is the identity."""
    assert convert.roster_from_proto(convert.roster_to_proto(roster)) == roster


# The reference ruleset counts waiting time (ladders, continuity), so it refuses a case
# received after `now` (pinned in test_adaptive_wire.py): decide cases received by NOW.
received_cases = cases.map(lambda c: replace(c, created_at=min(c.created_at, NOW)))


@given(case=received_cases, roster=rosters, full=st.booleans())
def test_decision_round_trips_with_full_and_summary_explanations(
    case: Case, roster: Roster, full: bool
) -> None:
    """Decision -> pb.Decision (explanation, signals, traces, matching) -> Decision is exact."""
    decision = decide(case, roster, RULESET, NOW, agent_detail=full)
    assert convert.decision_from_proto(convert.decision_to_proto(decision)) == _on_the_wire(
        decision
    )


def _on_the_wire(decision: Decision) -> Decision:
    """The decision as the API carries it: failed_masks are kept for the audit record only."""
    matching = decision.explanation.matching
    if matching is None:
        return decision
    explanation = replace(decision.explanation, matching=replace(matching, failed_masks=()))
    return replace(decision, explanation=explanation)


def _decision(full: bool = True) -> Decision:
    roster = make_roster(make_agent("a1"), make_agent("a2", capacity=Capacity(1, 1)))
    return decide(make_case(), roster, RULESET, NOW, agent_detail=full)


def test_summary_explanations_travel_without_per_agent_verdicts() -> None:
    """SUMMARY keeps counts, masks and ranking but no verdicts; FULL has one per agent."""
    full = convert.decision_to_proto(_decision(full=True)).explanation.matching
    summary = convert.decision_to_proto(_decision(full=False)).explanation.matching
    assert [(v.agent_id, v.eligible) for v in full.agents] == [("a1", True), ("a2", False)]
    assert list(summary.agents) == []
    assert [(c.check, c.agents) for c in summary.exclusion_counts] == [("capacity", 1)]
    assert [c.agent_id for c in summary.ranking] == ["a1"]


def test_decide_request_becomes_the_command_it_describes() -> None:
    """Every DecideRequest field reaches the command: ids, ruleset, case, roster, now, level."""
    case, roster = make_case(), make_roster(make_agent("a1"))
    request = pb.DecideRequest(
        request_id="r-1",
        ruleset=pb.RulesetSelector(name="patient-enquiries", version="2026.11.1"),
        case=convert.case_to_proto(case),
        roster=convert.roster_to_proto(roster),
        now=convert.datetime_to_timestamp(NOW),
        explanation_level=pb.EXPLANATION_LEVEL_SUMMARY,
    )
    expected = DecideCommand(
        "r-1",
        "patient-enquiries",
        "2026.11.1",
        (case,),
        roster,
        NOW,
        agent_detail=False,
        caller="CN=caller",
    )
    assert convert.decide_command(request, "CN=caller") == expected
    request.ClearField("now")
    request.explanation_level = pb.EXPLANATION_LEVEL_FULL
    without_now = convert.decide_command(request)
    assert (without_now.now, without_now.agent_detail, without_now.caller) == (None, True, "")


def test_batch_request_becomes_the_command_it_describes() -> None:
    """A DecideBatchRequest keeps its cases in order with the roster; unset level is SUMMARY."""
    cases = (make_case(case_id="B1"), make_case(case_id="B2", urgency=Urgency.CRITICAL))
    roster = make_roster(make_agent("a1"))
    request = pb.DecideBatchRequest(
        request_id="b-1",
        cases=[convert.case_to_proto(c) for c in cases],
        roster=convert.roster_to_proto(roster),
        now=convert.datetime_to_timestamp(NOW),
    )
    expected = DecideCommand(
        "b-1", "", "", cases, roster, NOW, agent_detail=False, caller="", batch=True
    )
    assert convert.batch_command(request) == expected
    request.explanation_level = pb.EXPLANATION_LEVEL_FULL
    assert convert.batch_command(request).agent_detail is True


def test_responses_carry_decisions_now_and_replayed() -> None:
    """DecideResponse and DecideBatchResponse hold the decisions, the instant and replayed."""
    first, second = _decision(), _decision(full=False)
    later = NOW + timedelta(seconds=1)
    single = convert.decide_response(DecideResult((first,), later, replayed=True))
    assert (
        convert.decision_from_proto(single.decision),
        convert.timestamp_to_datetime(single.now),
        single.replayed,
    ) == (first, later, True)
    batch = convert.batch_response(DecideResult((first, second), NOW))
    assert (
        [convert.decision_from_proto(d) for d in batch.decisions],
        convert.timestamp_to_datetime(batch.now),
        batch.replayed,
    ) == ([first, _on_the_wire(second)], NOW, False)


def test_list_request_becomes_a_query() -> None:
    """ListDecisionsRequest filters and paging reach the query; unset instants are None."""
    request = pb.ListDecisionsRequest(
        case_id="C1",
        since=convert.datetime_to_timestamp(NOW),
        until=convert.datetime_to_timestamp(NOW + timedelta(hours=1)),
        page_size=7,
        page_token="tok",
    )
    assert convert.decision_query(request) == DecisionQuery(
        "C1", NOW, NOW + timedelta(hours=1), 7, "tok"
    )
    assert convert.decision_query(pb.ListDecisionsRequest()) == DecisionQuery()


def test_audited_decisions_and_pages_carry_the_stored_record(tmp_path: Path) -> None:
    """AuditedDecision and ListDecisionsResponse hold the decision and the record's chain data."""
    registry = RulesetRegistry()
    registry.add(RULESET)
    core = audited_core(registry, tmp_path)
    roster = make_roster(make_agent("a1"))
    for n in range(3):
        command = DecideCommand(f"r{n}", "", "", (make_case(case_id=f"C{n}"),), roster, NOW)
        core.decide(command)
    log = DecisionLog(core.audit)
    audited = log.get(request_decision_id("r1", 0))
    message = convert.audited_to_proto(audited)
    record = audited.record
    assert (
        message.seq,
        convert.decision_from_proto(message.decision),
        message.request_id,
        message.recorded_at.ToJsonString(),
        message.caller,
        json.loads(message.input_json),
        message.request_sha256,
        message.prev_hash,
        message.record_hash,
    ) == (
        2,
        audited.decision,
        "r1",
        record.recorded_at,
        "",
        record_input_to_wire(record.input),  # the case in the JSON dialect (docs/json.md)
        record.request_sha256,
        record.prev_hash,
        record.record_hash,
    )
    page = log.list(DecisionQuery(page_size=2))
    listed = convert.list_response(page)
    assert [m.request_id for m in listed.decisions] == ["r0", "r1"]
    assert listed.decisions[1] == message
    assert listed.next_page_token == page.next_page_token != ""
    core.audit.close()
