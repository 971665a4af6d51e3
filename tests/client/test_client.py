"""The published client against a real server: decide, batch, log reads, ids, typed errors."""

from datetime import timedelta

import grpc
import pytest

from caseroute.client import (
    Client,
    ExplanationLevel,
    InvalidRequestError,
    NotFoundError,
    RequestIdConflictError,
    derive_request_id,
)
from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.decision import Outcome
from caseroute.grpc_api.server import RunningServer
from caseroute.testing import NOW

from .conftest import NOW_TEXT, agent_dict, case_dict, roster_dict


def test_decide_with_dicts_returns_a_domain_decision_recorded_on_the_server(
    client: Client, server: RunningServer
) -> None:
    """Dicts in the JSON dialect in, a domain Decision out, recorded under the derived id."""
    reply = client.decide(case_dict("D-1"), roster_dict(), now=NOW)
    decision = reply.decision
    assert (decision.case_id, decision.outcome, decision.agent_id, reply.now, reply.replayed) == (
        "D-1",
        Outcome.ASSIGN,
        "a1",
        NOW,
        False,
    )
    record = server.core.audit.get(decision.decision_id)
    assert record is not None
    assert (record.request_id, reply.request_id[:5], len(reply.request_id)) == (
        reply.request_id,
        "auto-",
        69,
    )


def test_the_same_request_as_dicts_or_domain_objects_gets_the_same_decision(
    client: Client,
) -> None:
    """Same content (dict or Case/Roster, now as text or datetime): same id, stored decision."""
    first = client.decide(case_dict("D-2"), roster_dict(), now=NOW_TEXT)
    again = client.decide(parse_case(case_dict("D-2")), parse_roster(roster_dict()), now=NOW)
    expected_id = derive_request_id(
        (parse_case(case_dict("D-2")),),
        parse_roster(roster_dict()),
        now=NOW,
        ruleset_name="",
        ruleset_version="",
        full=False,
    )
    assert (first.request_id, again.request_id, first.replayed, again.replayed) == (
        expected_id,
        expected_id,
        False,
        True,
    )
    assert again.decision.decision_id == first.decision.decision_id


def test_anything_else_sent_derives_another_request_id(client: Client) -> None:
    """Level, ruleset version, now, a case field or the roster each change the derived id."""
    base = {"case": case_dict("D-3"), "roster": roster_dict(), "now": NOW}
    ids = {client.decide(**base).request_id}  # type: ignore[arg-type]
    variants = [
        {**base, "explanation_level": ExplanationLevel.FULL},
        {**base, "version": "2026.12.1"},
        {**base, "now": NOW + timedelta(microseconds=1)},
        {**base, "case": case_dict("D-3", urgency="urgent")},
        {**base, "roster": roster_dict(agent_dict("a1"))},
    ]
    ids |= {client.decide(**v).request_id for v in variants}  # type: ignore[arg-type]
    assert len(ids) == 1 + len(variants)


def test_without_now_the_clients_clock_is_read_once_per_call(server: RunningServer) -> None:
    """No now: the client's clock decides; a later call is a new decision, not a replay."""
    instants = iter([NOW, NOW + timedelta(minutes=15)])
    with Client(f"127.0.0.1:{server.port}", clock=lambda: next(instants)) as client:
        first = client.decide(case_dict("D-4"), roster_dict())
        later = client.decide(case_dict("D-4"), roster_dict())
    assert (first.now, later.now, first.replayed, later.replayed) == (
        NOW,
        NOW + timedelta(minutes=15),
        False,
        False,
    )
    assert first.decision.decision_id != later.decision.decision_id


def test_summary_is_the_default_level_and_full_gives_a_verdict_per_agent(client: Client) -> None:
    """SUMMARY (default): no per-agent verdicts, failed checks counted; FULL: one per agent."""
    summary = client.decide(case_dict("D-5"), roster_dict(), now=NOW).decision
    full = client.decide(
        case_dict("D-5"), roster_dict(), now=NOW, explanation_level="full"
    ).decision
    assert summary.explanation.matching is not None
    assert full.explanation.matching is not None
    assert (summary.explanation.matching.agents, summary.explanation.matching.exclusion_counts) == (
        (),
        (("territory", 1),),
    )
    assert [(v.agent_id, v.eligible) for v in full.explanation.matching.agents] == [
        ("a1", True),
        ("ca", False),
    ]


def test_a_batch_is_decided_in_order_against_one_roster(client: Client) -> None:
    """decide_batch returns one decision per case in order; capacity is used case by case."""
    roster = roster_dict(agent_dict("solo", capacity={"max": 2, "active": 1}))
    reply = client.decide_batch([case_dict("B-1"), case_dict("B-2")], roster, now=NOW)
    assert [(d.case_id, d.outcome, d.agent_id) for d in reply.decisions] == [
        ("B-1", Outcome.ASSIGN, "solo"),
        ("B-2", Outcome.QUEUE, None),
    ]
    assert reply.request_id == derive_request_id(
        (parse_case(case_dict("B-1")), parse_case(case_dict("B-2"))),
        parse_roster(roster),
        now=NOW,
        ruleset_name="",
        ruleset_version="",
        full=False,
    )


def test_get_and_list_read_back_what_was_decided(client: Client) -> None:
    """get_decision and list_decisions (across pages of one) return the recorded decisions."""
    made = [
        client.decide(case_dict("L-1"), roster_dict(), now=NOW + timedelta(minutes=m))
        for m in (1, 2, 3)
    ]
    logged = client.get_decision(made[0].decision.decision_id)
    assert (logged.request_id, logged.decision, logged.input["case"]["case_id"]) == (
        made[0].request_id,
        made[0].decision,
        "L-1",
    )
    listed = list(client.list_decisions(case_id="L-1", page_size=1))
    assert [x.decision.decision_id for x in listed] == [r.decision.decision_id for r in made]
    pages = list(client.decision_pages(case_id="L-1", page_size=2))
    assert [len(p.decisions) for p in pages] == [2, 1]
    assert pages[-1].next_page_token == ""
    since = list(client.list_decisions(case_id="L-1", since=NOW + timedelta(minutes=2)))
    assert [x.decision.decision_id for x in since] == [r.decision.decision_id for r in made[1:]]


def test_invalid_input_is_refused_before_sending_with_every_field_path(client: Client) -> None:
    """Bad case and roster fields: one InvalidRequestError naming each path, nothing sent."""
    with pytest.raises(InvalidRequestError) as caught:
        client.decide_batch(
            [case_dict("ok"), case_dict("bad", intent="astrology")],
            roster_dict(agent_dict("a1", capacity={"max": -1, "active": 0})),
            now="yesterday",
        )
    error = caught.value
    assert (error.code, error.sent) == (grpc.StatusCode.INVALID_ARGUMENT, False)
    assert [v.field for v in error.violations] == [
        "cases[1].intent",
        "roster.agents[0].capacity.max",
        "now",
    ]


def test_server_side_invalid_argument_carries_the_bad_request_field_violations(
    client: Client,
) -> None:
    """An over-long request_id: INVALID_ARGUMENT from the server, its BadRequest as violations."""
    with pytest.raises(InvalidRequestError) as caught:
        client.decide(case_dict("E-1"), roster_dict(), now=NOW, request_id="r" * 201)
    error = caught.value
    assert (error.code, error.sent, [v.field for v in error.violations]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        True,
        ["request_id"],
    )
    assert str(error).startswith(
        "server answered INVALID_ARGUMENT: invalid request: 1 problem(s); first: request_id: "
    )


def test_status_codes_become_typed_errors(client: Client) -> None:
    """NOT_FOUND (ruleset, decision) and ALREADY_EXISTS (reused id) raise their own classes."""
    with pytest.raises(NotFoundError) as unknown_ruleset:
        client.decide(case_dict("E-2"), roster_dict(), now=NOW, ruleset="no-such-ruleset")
    with pytest.raises(NotFoundError) as unknown_decision:
        client.get_decision("dec_nope")
    client.decide(case_dict("E-3"), roster_dict(), now=NOW, request_id="reused-1")
    with pytest.raises(RequestIdConflictError) as conflict:
        client.decide(case_dict("E-4"), roster_dict(), now=NOW, request_id="reused-1")
    assert [e.value.code for e in (unknown_ruleset, unknown_decision, conflict)] == [
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
    ]


@pytest.mark.parametrize("bad", ["   \t   ", "bad\x00id", "\u200bid", ""])
def test_a_blank_or_control_request_id_is_refused_before_sending(client: Client, bad: str) -> None:
    """Every server refuses these (review R32c F3), so the client does, naming request_id."""
    with pytest.raises(InvalidRequestError) as caught:
        client.decide(case_dict("RID-client"), roster_dict(), now=NOW, request_id=bad)
    error = caught.value
    assert (error.sent, [v.field for v in error.violations]) == (False, ["request_id"])
    assert "request_id: must " in str(error)
