"""The wire's edges: absent messages and ids, a bad optional instant, a bad export line."""

import json
from pathlib import Path

import grpc
import grpc_testing
import pytest
from google.rpc import error_details_pb2, status_pb2

from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.replay.source import ExportedRecords, ExportFormatError
from caseroute.service import RoutingCore
from caseroute.testing import make_agent, make_case, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from caseroute.wire.json_dialect import record_from_export_line

CASE = convert.case_to_proto(make_case())
ROSTER = convert.roster_to_proto(make_roster(make_agent("a1")))
SERVICE = pb.DESCRIPTOR.services_by_name["RoutingService"]

ROSTER_REQUIRED = FieldViolation("roster", "is required (it may have no agents)")
TIMESTAMP_RANGE = (
    "must be a Timestamp from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z with "
    "nanos in [0, 999999999]; got seconds=253402300800, nanos=0"
)


def _refused(convert_it: object, msg: object) -> tuple[FieldViolation, ...]:
    """The violations ``convert_it(msg)`` raises."""
    with pytest.raises(RequestError) as caught:
        convert_it(msg)  # type: ignore[operator]
    return caught.value.violations


def test_a_decide_request_without_case_or_roster_names_both() -> None:
    """An empty DecideRequest: case is required, roster is required; one error for both."""
    assert _refused(convert.decide_command, pb.DecideRequest(request_id="r-1")) == (
        FieldViolation("case", "is required"),
        ROSTER_REQUIRED,
    )


@pytest.mark.parametrize(
    ("roster", "expected"),
    [
        (None, ROSTER_REQUIRED),
        (
            pb.Roster(snapshot_id="s", taken_at=ROSTER.taken_at, agents=[pb.Agent(agent_id="a1")]),
            FieldViolation("roster.agents[0].capacity", "is required"),
        ),
    ],
    ids=["absent", "agent-without-capacity"],
)
def test_a_batch_request_names_its_roster_problem(
    roster: pb.Roster | None, expected: FieldViolation
) -> None:
    """DecideBatchRequest with no roster, or an agent with no capacity: named under roster."""
    request = pb.DecideBatchRequest(request_id="b-1", cases=[CASE], roster=roster)
    assert expected in _refused(convert.batch_command, request)


def test_a_case_without_an_id_is_refused() -> None:
    """A Case with case_id unset (""): case.case_id is required."""
    case = pb.Case()
    case.CopyFrom(CASE)
    case.ClearField("case_id")
    assert _refused(convert.case_from_proto, case) == (
        FieldViolation("case.case_id", "is required"),
    )


def test_an_attribute_text_holding_a_nul_is_refused_on_the_wire() -> None:
    """The fast converter doubts a NUL; the strict one names the attribute (no row stores it)."""
    case = pb.Case()
    case.CopyFrom(CASE)
    case.attributes["notes"].string_value = "x\x00y"
    request = pb.DecideRequest(request_id="r-1", case=case, roster=ROSTER)
    assert _refused(convert.decide_command, request) == (
        FieldViolation(
            "case.attributes.notes",
            "must not hold a NUL character (U+0000), which no text means; remove it",
        ),
    )


def test_an_agent_attribute_text_holding_a_nul_is_refused_on_the_wire() -> None:
    """Agents' attributes follow Case.attributes' rules: the NUL is named at its agent."""
    roster = pb.Roster()
    roster.CopyFrom(ROSTER)
    roster.agents[0].attributes["desk"].string_value = "\x00"
    request = pb.DecideRequest(request_id="r-1", case=CASE, roster=roster)
    assert _refused(convert.decide_command, request) == (
        FieldViolation(
            "roster.agents[0].attributes.desk",
            "must not hold a NUL character (U+0000), which no text means; remove it",
        ),
    )


def test_an_out_of_range_optional_instant_is_refused_not_dropped() -> None:
    """waiting_since past year 9999 on an otherwise valid case: refused, never read as unset."""
    case = pb.Case()
    case.CopyFrom(CASE)
    case.waiting_since.seconds = 253402300800
    assert _refused(convert.case_from_proto, case) == (
        FieldViolation("case.waiting_since", TIMESTAMP_RANGE),
    )


def test_the_servicer_answers_invalid_argument_with_both_field_violations(
    core: RoutingCore,
) -> None:
    """Over gRPC an empty DecideRequest is INVALID_ARGUMENT whose BadRequest names case, roster."""
    server = grpc_testing.server_from_dictionary(
        {SERVICE: RoutingServicer(core)}, grpc_testing.strict_real_time()
    )
    rpc = server.invoke_unary_unary(
        SERVICE.methods_by_name["Decide"], (), pb.DecideRequest(request_id="r-2"), None
    )
    _, trailing, code, _ = rpc.termination()
    status = status_pb2.Status.FromString(dict(trailing)["grpc-status-details-bin"])
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert (code, [(v.field, v.description) for v in bad.field_violations]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        [("case", "is required"), ("roster", "is required (it may have no agents)")],
    )
    assert core.audit.head()[0] == 0  # nothing recorded


@pytest.mark.parametrize("input_json", ["[1]", '"text"', "3"])
def test_an_export_line_whose_input_is_not_an_object_is_named_with_its_line(
    input_json: str, tmp_path: Path
) -> None:
    """Replay reads an export line whose input_json is no object: refused at its file:line."""
    export = tmp_path / "export.jsonl"
    export.write_text(json.dumps({"input_json": input_json}) + "\n")
    with pytest.raises(ExportFormatError) as caught:
        list(ExportedRecords(export, parse=record_from_export_line).records())
    assert str(caught.value) == (
        f"{export}:1: the line has an input_json that is not a JSON object; --input takes the "
        "output of `caseroute audit export` (one record per line)"
    )
