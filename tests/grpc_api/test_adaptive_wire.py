"""Adaptive routing on the wire: case anchor and preferences, decision ladder and continuity."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import given
from hypothesis import strategies as st

from caseroute.domain.case import Case, ContinuityReason, PreferredAgent
from caseroute.domain.decision import Decision
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import RunningServer, ServerConfig, build_server
from caseroute.testing import NOW, audit_config, make_case
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert
from tests.code_texts import ALNUM, IDENTIFIER_REST, pattern_texts
from tests.domain.test_adaptive_codec import (
    ADAPTIVE_ROSTER,
    ADAPTIVE_TEXT,
    DECISIONS,
    PREFERRED,
)

TIMESTAMP_RANGE = (
    "must be a Timestamp from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z with "
    "nanos in [0, 999999999]; got seconds=0, nanos=-1"
)
ADAPTIVE_CASE = make_case(
    waiting_since=NOW - timedelta(minutes=3),
    declined_agents=frozenset({"far", "a1"}),
    preferred_agents=PREFERRED,
)

instants = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - the bound; timezones= makes values aware
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)
# [A-Za-z0-9][A-Za-z0-9_.:/-]{0,10}, drawn without from_regex (tests/code_texts.py).
agent_ids = pattern_texts(ALNUM, IDENTIFIER_REST, 10)
preferred_lists = st.lists(
    st.builds(
        PreferredAgent,
        agent_id=agent_ids,
        reason=st.sampled_from(list(ContinuityReason)),
        last_contact_at=st.one_of(st.none(), instants),
    ),
    max_size=4,
    unique_by=lambda p: p.agent_id,
).map(tuple)


def _violations(msg: pb.Case, path: str = "case") -> list[FieldViolation]:
    with pytest.raises(RequestError) as exc:
        convert.case_from_proto(msg, path)
    return list(exc.value.violations)


@given(
    waiting_since=st.one_of(st.none(), instants),
    declined=st.frozensets(agent_ids, max_size=3),
    preferred=preferred_lists,
)
def test_a_case_round_trips_with_its_anchor_declines_and_preferences(
    waiting_since: datetime | None,
    declined: frozenset[str],
    preferred: tuple[PreferredAgent, ...],
) -> None:
    """Case -> pb.Case -> Case keeps waiting_since, declined_agents and preferred_agents."""
    case = make_case(
        waiting_since=waiting_since, declined_agents=declined, preferred_agents=preferred
    )
    assert convert.case_from_proto(convert.case_to_proto(case)) == case


def test_the_case_message_carries_the_new_fields_as_documented() -> None:
    """Declined agents are sorted, preferences keep the case's order, unset times stay unset."""
    msg = convert.case_to_proto(ADAPTIVE_CASE)
    assert (
        msg.waiting_since.ToJsonString(),
        list(msg.declined_agents),
        [
            (p.agent_id, p.reason, p.HasField("last_contact_at"), p.last_contact_at.ToJsonString())
            for p in msg.preferred_agents
        ],
    ) == (
        "2026-11-21T09:57:00Z",
        ["a1", "far"],
        [
            ("busy", pb.CONTINUITY_REASON_PREVIOUS_CONTACT, True, "2026-11-18T10:00:00Z"),
            ("ghost", pb.CONTINUITY_REASON_CARE_TEAM, False, "1970-01-01T00:00:00Z"),
        ],
    )
    assert not convert.case_to_proto(make_case()).HasField("waiting_since")


def test_an_unspecified_or_unknown_reason_is_refused_naming_its_path() -> None:
    """UNSPECIFIED is "required" and an unknown number lists the reasons, as other enums do."""
    msg = convert.case_to_proto(make_case())
    msg.preferred_agents.add(agent_id="p1")
    msg.preferred_agents.add(agent_id="p2", reason=9)  # a number no reason has
    assert _violations(msg, "cases[2]") == [
        FieldViolation("cases[2].preferred_agents[0].reason", "is required"),
        FieldViolation(
            "cases[2].preferred_agents[1].reason",
            "must be one of CONTINUITY_REASON_PREVIOUS_CONTACT, CONTINUITY_REASON_NAMED_CLINICIAN, "
            "CONTINUITY_REASON_CARE_TEAM; got 9",
        ),
    ]


def test_bad_preferred_and_declined_agents_are_refused_naming_each_path() -> None:
    """A missing or repeated id, a bad declined id and out-of-range instants each name a field."""
    msg = convert.case_to_proto(make_case())
    msg.waiting_since.nanos = -1
    msg.declined_agents.append("bad id")
    msg.preferred_agents.add(reason=pb.CONTINUITY_REASON_CARE_TEAM)
    msg.preferred_agents.add(agent_id="p1", reason=pb.CONTINUITY_REASON_CARE_TEAM)
    msg.preferred_agents.add(agent_id="p1", reason=pb.CONTINUITY_REASON_NAMED_CLINICIAN)
    msg.preferred_agents[1].last_contact_at.nanos = -1
    assert _violations(msg) == [
        FieldViolation("case.waiting_since", TIMESTAMP_RANGE),
        FieldViolation("case.preferred_agents[1].last_contact_at", TIMESTAMP_RANGE),
        FieldViolation(
            "case.declined_agents[0]",
            "'bad id' is not a valid agent id (letters, digits and _ . : / -, starting with a "
            "letter or digit)",
        ),
        FieldViolation("case.preferred_agents[0].agent_id", "is required"),
        FieldViolation(
            "case.preferred_agents[2].agent_id",
            "'p1' is listed twice; name each preferred agent once",
        ),
    ]


def _on_the_wire(decision: Decision) -> Decision:
    """The decision as the API carries it: failed_masks are kept for the audit record only."""
    matching = decision.explanation.matching
    if matching is None:
        return decision
    explanation = replace(decision.explanation, matching=replace(matching, failed_masks=()))
    return replace(decision, explanation=explanation)


@pytest.mark.parametrize("name", sorted(DECISIONS))
def test_adaptive_decisions_round_trip_through_the_decision_message(name: str) -> None:
    """Decision -> pb.Decision -> Decision is exact with full ladder and continuity traces."""
    decision = DECISIONS[name]
    assert convert.decision_from_proto(convert.decision_to_proto(decision)) == _on_the_wire(
        decision
    )


def test_a_held_decision_carries_its_instants_and_traces_as_proto_fields() -> None:
    """Hold end, next relaxation, step statuses and preferred statuses are typed proto fields."""
    msg = convert.decision_to_proto(DECISIONS["held"])
    relaxation, continuity = msg.explanation.relaxation, msg.explanation.continuity
    assert (
        msg.held_for_preferred_until.ToJsonString(),
        msg.next_relaxation_at.ToJsonString(),
        relaxation.ladder,
        relaxation.anchor,
        [(s.name, s.status, s.at.ToJsonString(), s.after_minutes) for s in relaxation.steps],
        relaxation.next_relaxation_at.ToJsonString(),
        continuity.outcome,
        continuity.hold_until.ToJsonString(),
        [(p.agent_id, p.reason, p.status) for p in continuity.preferred],
        continuity.preferred[1].HasField("last_contact_at"),
    ) == (
        "2026-11-21T10:10:00Z",
        # The hold's end; the ladder's next step is territory's: the language step at 10:05
        # makes nobody eligible (review R33a L1).
        "2026-11-21T10:10:00Z",
        "lang",
        "created_at",
        [
            ("any-language", pb.STEP_STATUS_PENDING, "2026-11-21T10:05:00Z", 10.0),
            ("any-territory", pb.STEP_STATUS_PENDING, "2026-11-21T10:25:00Z", 30.0),
        ],
        "2026-11-21T10:25:00Z",
        pb.CONTINUITY_OUTCOME_HELD_FOR_PREFERRED,
        "2026-11-21T10:10:00Z",
        [
            ("busy", pb.CONTINUITY_REASON_PREVIOUS_CONTACT, "held_for"),
            ("ghost", pb.CONTINUITY_REASON_CARE_TEAM, "not_on_roster"),
        ],
        False,
    )


def test_a_step_that_never_applies_has_no_instant_or_delay_on_the_wire() -> None:
    """STEP_STATUS_NEVER leaves at and after_minutes unset (not 1970 and 0)."""
    step = convert.decision_to_proto(DECISIONS["critical"]).explanation.relaxation.steps[0]
    assert (step.status, step.HasField("at"), step.HasField("after_minutes")) == (
        pb.STEP_STATUS_NEVER,
        False,
        False,
    )


def test_a_decision_without_adaptive_routing_leaves_the_new_fields_unset() -> None:
    """No ladder, no continuity: no relaxation or continuity message and no instants."""
    decision = DECISIONS["relaxed"]
    bare = replace(
        decision,
        next_relaxation_at=None,
        held_for_preferred_until=None,
        explanation=replace(decision.explanation, relaxation=None, continuity=None),
    )
    wire = convert.decision_to_proto(bare)
    assert [
        wire.HasField("next_relaxation_at"),
        wire.HasField("held_for_preferred_until"),
        wire.explanation.HasField("relaxation"),
        wire.explanation.HasField("continuity"),
    ] == [False, False, False, False]
    assert convert.decision_from_proto(wire) == _on_the_wire(bare)


# ---------------------------------------------------------------------------------------------
# A real server over a rulesets directory holding the adaptive ruleset


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server on a free port serving the adaptive ruleset as ``adaptive`` version 1."""
    home = tmp_path_factory.mktemp("adaptive")
    source = home / "rulesets" / "adaptive" / "1" / "ruleset.yaml"
    source.parent.mkdir(parents=True)
    source.write_text(ADAPTIVE_TEXT.replace("ruleset: test\n", "ruleset: adaptive\n"))
    (home / "rulesets" / "adaptive" / "serving.yaml").write_text("active: '1'\n")
    config = ServerConfig(
        rulesets=home / "rulesets",
        port=0,
        engine=EngineKind.PYTHON,
        audit=audit_config(home / "audit"),
        reload_interval_s=0,
    )
    server = build_server(config, reuse_port=False)
    try:
        server.load(config)
        yield server
    finally:
        server.stop(1)


def _request(request_id: str, case: Case) -> pb.DecideRequest:
    return pb.DecideRequest(
        request_id=request_id,
        ruleset=pb.RulesetSelector(name="adaptive"),
        case=convert.case_to_proto(case),
        roster=convert.roster_to_proto(ADAPTIVE_ROSTER),
        now=convert.datetime_to_timestamp(NOW),
    )


def _decide(server: RunningServer, request: Any, method: str = "Decide") -> Any:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        return getattr(stub, method)(request, timeout=30)


def _refusal(server: RunningServer, request: Any, method: str = "Decide") -> Any:
    with pytest.raises(grpc.RpcError) as exc:
        _decide(server, request, method)
    error: Any = exc.value
    status = rpc_status.from_call(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return error.code(), [(v.field, v.description) for v in bad.field_violations]


def test_decide_holds_for_a_busy_preferred_agent_and_says_until_when(
    running: RunningServer,
) -> None:
    """A routine case preferring a busy agent: QUEUE with hold end, next step and the trace."""
    case = make_case(
        created_at=NOW - timedelta(minutes=5), preferred_language="es", preferred_agents=PREFERRED
    )
    decision = _decide(running, _request("held-1", case)).decision
    continuity = decision.explanation.continuity
    assert (
        decision.outcome,
        list(decision.reason_codes),
        decision.held_for_preferred_until.ToJsonString(),
        decision.next_relaxation_at.ToJsonString(),
        continuity.outcome,
        [(p.agent_id, p.status, p.detail) for p in continuity.preferred],
        decision.explanation.relaxation.summary,
    ) == (
        pb.OUTCOME_QUEUE,
        ["routed", "held_for_preferred_agent"],
        "2026-11-21T10:10:00Z",
        "2026-11-21T10:05:00Z",
        pb.CONTINUITY_OUTCOME_HELD_FOR_PREFERRED,
        [
            ("busy", "held_for", "at capacity 5/5; case held until 10:10"),
            ("ghost", "not_on_roster", "not on the roster snapshot"),
        ],
        "nothing relaxed after 5 min waiting; language relaxes at 10:05; licence never relaxes",
    )


def test_a_retry_returns_the_stored_decision_with_its_traces(running: RunningServer) -> None:
    """The same request_id again: the stored decision, equal to the first, traces included."""
    case = make_case(
        created_at=NOW - timedelta(minutes=40),
        waiting_since=NOW - timedelta(minutes=31),
        preferred_agents=PREFERRED,
    )
    first = _decide(running, _request("retry-1", case))
    again = _decide(running, _request("retry-1", case))
    assert (again.replayed, again.decision) == (True, first.decision)
    assert first.decision.explanation.HasField("continuity")


def test_a_wait_anchor_after_now_is_invalid_argument_at_case_waiting_since(
    running: RunningServer,
) -> None:
    """waiting_since after now: INVALID_ARGUMENT with a BadRequest violation on the field."""
    case = make_case(waiting_since=NOW + timedelta(minutes=1))
    assert _refusal(running, _request("future-1", case)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [
            (
                "case.waiting_since",
                (
                    "is 2026-11-21T10:01:00Z, after now (2026-11-21T10:00:00Z); ruleset "
                    "adaptive@1 counts waiting time from it, which cannot be negative. Send the "
                    "decision instant as `now`, or fix the clock that stamped it"
                ),
            )
        ],
    )


def test_an_unspecified_reason_is_invalid_argument_naming_the_field(
    running: RunningServer,
) -> None:
    """A preferred agent without a reason: INVALID_ARGUMENT at case.preferred_agents[0].reason."""
    request = _request("noreason-1", make_case())
    request.case.preferred_agents.add(agent_id="busy")
    assert _refusal(running, request) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [("case.preferred_agents[0].reason", "is required")],
    )


def test_a_batch_names_the_case_whose_wait_anchor_is_after_now(running: RunningServer) -> None:
    """In DecideBatch the violation names cases[i], as every other case field does."""
    request = pb.DecideBatchRequest(
        request_id="future-batch-1",
        ruleset=pb.RulesetSelector(name="adaptive"),
        cases=[
            convert.case_to_proto(make_case(case_id="C0")),
            convert.case_to_proto(
                make_case(case_id="C1", waiting_since=NOW + timedelta(minutes=1))
            ),
        ],
        roster=convert.roster_to_proto(ADAPTIVE_ROSTER),
        now=convert.datetime_to_timestamp(NOW),
    )
    code, violations = _refusal(running, request, "DecideBatch")
    assert (code, [field for field, _ in violations]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["cases[1].waiting_since"],
    )


def test_the_decision_log_returns_the_recorded_traces(running: RunningServer) -> None:
    """GetDecision returns the held decision as Decide did: instants and traces included."""
    case = make_case(case_id="LOG1", preferred_agents=PREFERRED)
    decided = _decide(running, _request("log-1", case)).decision
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = routing_pb2_grpc.DecisionLogStub(channel)
        stored = stub.GetDecision(pb.GetDecisionRequest(decision_id=decided.decision_id))
    assert (stored.decision, stored.decision.explanation.continuity.outcome) == (
        decided,
        pb.CONTINUITY_OUTCOME_HELD_FOR_PREFERRED,
    )
