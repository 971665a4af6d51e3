"""A batch names each case once; envelope problems are reported with the others (review R34a).

F1: a DecideBatch naming CASE-1001 three times got three ASSIGN decisions (two agents, capacity
used by the copies), all recorded. F2: an empty request_id was left out of the violations when
the case had others, and with an unknown roster_sha256 an empty request_id or an undefined
explanation level lost to FAILED_PRECONDITION ROSTER_NOT_CACHED (docs/serving.md: other field
problems win, so a caller resending its roster is not refused again for them).
"""

from collections.abc import Callable
from datetime import timedelta

import grpc
import pytest

from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.errors import RequestError
from caseroute.domain.fingerprint import case_to_dict, roster_to_dict
from caseroute.service import DecideCommand, RoutingCore
from caseroute.testing import NOW, make_agent, make_case, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert

from .conftest import ROSTER, decide_request
from .in_process import invoke_for_bad_request

UNKNOWN = "0" * 64


def _batch(request_id: str, *case_ids: str) -> pb.DecideBatchRequest:
    return pb.DecideBatchRequest(
        request_id=request_id,
        cases=[convert.case_to_proto(make_case(case_id=c)) for c in case_ids],
        roster=convert.roster_to_proto(ROSTER),
        now=convert.datetime_to_timestamp(NOW),
    )


def _fields(bad: object) -> list[str]:
    return [v.field for v in bad.field_violations]  # type: ignore[attr-defined]


def test_a_batch_naming_a_case_twice_is_refused_and_nothing_is_recorded(
    core: RoutingCore,
) -> None:
    """INVALID_ARGUMENT at each repeat's case_id, naming the first; no decision recorded."""
    request = _batch("b1", "C-1", "C-2", "C-1", "C-1")
    code, bad = invoke_for_bad_request(core, "DecideBatch", request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    said = (
        "duplicate case_id 'C-1' (first at cases[0]); a batch decides each case once: send "
        "each case once (decide it again in a later call if it changed)"
    )
    assert [(v.field, v.description) for v in bad.field_violations] == [
        (f"cases[{i}].case_id", said) for i in (2, 3)
    ]
    assert core.audit.by_request("b1") == []


def test_a_repeat_is_named_beside_another_case_s_problems_at_its_own_position(
    core: RoutingCore,
) -> None:
    """A case that cannot be read does not shift the positions the repeat is named at."""
    request = _batch("b2", "C-1", "C-2", "C-1")
    request.cases[1].channel = 99  # type: ignore[assignment]  # not a Channel
    code, bad = invoke_for_bad_request(core, "DecideBatch", request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert _fields(bad) == ["cases[1].channel", "cases[2].case_id"]


def test_distinct_case_ids_in_a_batch_are_decided(core: RoutingCore) -> None:
    """The check refuses repeats only: different ids are different cases."""
    code, bad = invoke_for_bad_request(core, "DecideBatch", _batch("b3", "C-1", "C-10", "C-2"))
    assert code is grpc.StatusCode.OK, bad
    assert len(core.audit.by_request("b3")) == 3


@pytest.mark.parametrize(
    "again",
    [
        "c-1",  # letter case
        "\uff23-1",  # fullwidth C
        "C\u20101",  # U+2010 HYPHEN
        "C\u20111",  # U+2011 NON-BREAKING HYPHEN
        "C\u20131",  # U+2013 EN DASH
        "C\u22121",  # U+2212 MINUS SIGN (a math symbol, not a dash, to Unicode)
    ],
)
def test_a_case_id_that_differs_only_in_case_width_or_a_look_alike_dash_is_a_repeat(
    core: RoutingCore, again: str
) -> None:
    """Review R36a L1: each of these passed as a second case and was assigned again."""
    code, bad = invoke_for_bad_request(core, "DecideBatch", _batch("b5", "C-1", again))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    (violation,) = bad.field_violations
    assert violation.field == "cases[1].case_id"
    assert "(first at cases[0] as 'C-1': the same id ignoring letter case, width" in (
        violation.description
    )
    assert core.audit.by_request("b5") == []


@pytest.mark.parametrize("case_id", ["C-1 ", " C-1", "C-1\u00a0", "\u3000C-1"])
def test_a_case_id_with_surrounding_whitespace_is_refused_at_its_field(
    core: RoutingCore, case_id: str
) -> None:
    """Review R36a L1: "C-1 " beside "C-1" was a second case; alone it is a template slip."""
    code, bad = invoke_for_bad_request(core, "DecideBatch", _batch("b6", case_id))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    (violation,) = bad.field_violations
    assert violation.field == "cases[0].case_id"
    assert violation.description.startswith("must not start or end with whitespace; got")


def test_a_code_built_batch_naming_a_case_twice_is_refused(core: RoutingCore) -> None:
    """The core checks every command, not only the ones a transport converted."""
    case = make_case(case_id="C-9")
    later = make_case(case_id="C-9", created_at=NOW - timedelta(minutes=1))
    command = DecideCommand("b4", "", "", (case, later), ROSTER, NOW, batch=True)
    with pytest.raises(RequestError) as raised:
        core.decide(command)
    assert [v.field for v in raised.value.violations] == ["cases[1].case_id"]
    assert core.audit.by_request("b4") == []


@pytest.mark.parametrize("method", ["Decide", "DecideBatch"])
def test_an_empty_request_id_is_named_with_the_case_s_problems(
    core: RoutingCore, method: str
) -> None:
    """Every problem at once: request_id was reported only after the case was fixed."""
    request: pb.DecideRequest | pb.DecideBatchRequest
    if method == "Decide":
        request = decide_request("")
        request.case.channel = 99  # type: ignore[assignment]
        case_field = "case.channel"
    else:
        request = _batch("", "C-1")
        request.cases[0].channel = 99  # type: ignore[assignment]
        case_field = "cases[0].channel"
    code, bad = invoke_for_bad_request(core, method, request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(_fields(bad)) == sorted(["request_id", case_field])


@pytest.mark.parametrize("request_id", ["", " ", "x" * 300])
def test_a_bad_request_id_wins_over_an_unknown_roster_hash(
    core: RoutingCore, request_id: str
) -> None:
    """INVALID_ARGUMENT at request_id, not ROSTER_NOT_CACHED: a resend would be refused."""
    request = decide_request(request_id)
    request.ClearField("roster")
    request.roster_sha256 = UNKNOWN
    code, bad = invoke_for_bad_request(core, "Decide", request)
    assert (code, _fields(bad)) == (grpc.StatusCode.INVALID_ARGUMENT, ["request_id"])


def test_an_undefined_explanation_level_wins_over_an_unknown_roster_hash(
    core: RoutingCore,
) -> None:
    """The level's violation is reported, not ROSTER_NOT_CACHED."""
    request = decide_request("r-level")
    request.ClearField("roster")
    request.roster_sha256 = UNKNOWN
    request.explanation_level = 9  # type: ignore[assignment]
    code, bad = invoke_for_bad_request(core, "Decide", request)
    assert (code, _fields(bad)) == (grpc.StatusCode.INVALID_ARGUMENT, ["explanation_level"])


def test_an_unknown_hash_alone_is_still_roster_not_cached(core: RoutingCore) -> None:
    """Nothing else wrong: FAILED_PRECONDITION, as the resend protocol needs."""
    request = decide_request("r-ok")
    request.ClearField("roster")
    request.roster_sha256 = UNKNOWN
    code, _ = invoke_for_bad_request(core, "Decide", request)
    assert code is grpc.StatusCode.FAILED_PRECONDITION


def test_agent_ids_differing_only_in_letter_case_are_refused(core: RoutingCore) -> None:
    """One agent's refusal excluded both: ids are one agent's ignoring case (R34a F6)."""
    roster = make_roster(make_agent("nurse-1"), make_agent("a2"), make_agent("NURSE-1"))
    request = decide_request("r-case")
    request.roster.CopyFrom(convert.roster_to_proto(roster))
    code, bad = invoke_for_bad_request(core, "Decide", request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    said = (
        "agent_id 'NURSE-1' differs from roster.agents[0].agent_id 'nurse-1' only in letter "
        "case; agent ids are compared ignoring case (declined_agents), so give each agent an "
        "id of its own"
    )
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("roster.agents[2].agent_id", said)
    ]
    assert core.audit.by_request("r-case") == []


def test_the_json_reader_refuses_them_too() -> None:
    """The CLI's and golden files' reader (and its fast path) says the same."""
    data = roster_to_dict(make_roster(make_agent("nurse-1"), make_agent("Nurse-1")))
    with pytest.raises(RequestError) as raised:
        parse_roster(data)
    assert [v.field for v in raised.value.violations] == ["roster.agents[1].agent_id"]
    assert "only in letter case" in raised.value.violations[0].message


@pytest.mark.parametrize("field", ["case_id", "snapshot_id"])
def test_the_json_readers_refuse_surrounding_whitespace_in_a_free_identifier(field: str) -> None:
    """The dict reader (request files, grpcurl's JSON) agrees with the wire's (R36a L1)."""
    read: Callable[[], object] = (
        (lambda: parse_roster({**roster_to_dict(make_roster(make_agent())), field: "snap-1 "}))
        if field == "snapshot_id"
        else (lambda: parse_case({**case_to_dict(make_case()), field: "C-1 "}))
    )
    with pytest.raises(RequestError) as refused:
        read()
    (violation,) = refused.value.violations
    assert violation.field.endswith(field)
    assert violation.message.startswith("must not start or end with whitespace")
