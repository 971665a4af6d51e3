"""Every status path of the servicer, through grpcio-testing (no network)."""

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import grpc
import grpc_testing
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from caseroute.audit.record import text_hash
from caseroute.domain.errors import AuditUnavailableError
from caseroute.grpc_api.servicer import DecisionLogServicer, RoutingServicer
from caseroute.service import DecisionLog, RoutingCore, RulesetRegistry
from caseroute.testing import audited_core, make_case
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert

from .conftest import ROSTER, decide_request

SERVICE = pb.DESCRIPTOR.services_by_name["RoutingService"]
LOG_SERVICE = pb.DESCRIPTOR.services_by_name["DecisionLog"]


def _call(core: Any, method: str, request: Any) -> tuple[Any, Any, grpc.StatusCode, str]:
    server = grpc_testing.server_from_dictionary(
        {SERVICE: RoutingServicer(core), LOG_SERVICE: DecisionLogServicer(DecisionLog(core.audit))},
        grpc_testing.strict_real_time(),
    )
    service = LOG_SERVICE if method in LOG_SERVICE.methods_by_name else SERVICE
    rpc = server.invoke_unary_unary(service.methods_by_name[method], (), request, None)
    termination: tuple[Any, Any, grpc.StatusCode, str] = rpc.termination()
    return termination


def _rich_status(metadata: Any) -> status_pb2.Status:
    raw = dict(metadata)["grpc-status-details-bin"]
    status = status_pb2.Status()
    status.ParseFromString(raw)
    return status


def test_decide_ok(core: RoutingCore) -> None:
    """A valid request gets a decision with provenance and the instant used."""
    response, _, code, _ = _call(core, "Decide", decide_request())
    assert code is grpc.StatusCode.OK
    d = response.decision
    assert (d.outcome, d.agent_id, d.rule_id, d.ruleset.name) == (
        pb.OUTCOME_ASSIGN,
        "a1",
        "clinical",
        "patient-enquiries",
    )
    assert len(d.ruleset.sha256) == 64
    assert response.now == decide_request().now


def test_invalid_input_names_every_field(core: RoutingCore) -> None:
    """INVALID_ARGUMENT with a google.rpc.BadRequest violation per bad field."""
    request = decide_request()
    request.case.intent = pb.INTENT_UNSPECIFIED
    request.case.ClearField("created_at")
    request.roster.agents[1].capacity.max = -1
    request.request_id = ""
    _, metadata, code, details = _call(core, "Decide", request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    status = _rich_status(metadata)
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert sorted(v.field for v in bad.field_violations) == [
        "case.created_at",
        "case.intent",
        "request_id",  # with the others since review R34a F2 (only once they were fixed before)
        "roster.agents[1].capacity.max",
    ]
    assert details == (
        "invalid request: 4 problem(s); first: request_id: must be 1-200 characters (an "
        "idempotency key); got 0 characters (server setting --max-id-chars) (every problem is "
        "in the google.rpc.BadRequest details)"
    )
    request_id_only = decide_request(request_id="")
    _, metadata, code, _ = _call(core, "Decide", request_id_only)
    bad = error_details_pb2.BadRequest()
    _rich_status(metadata).details[0].Unpack(bad)
    assert (code, [v.field for v in bad.field_violations]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["request_id"],
    )


def test_an_over_long_attribute_value_is_not_echoed_to_the_caller(core: RoutingCore) -> None:
    """R31b F1: INVALID_ARGUMENT quoted a masked attribute's first 40 characters back.

    Neither the status message nor the BadRequest details carry the value: the field path
    says which one, and proxies and clients log both.
    """
    request = decide_request()
    request.case.attributes["patient_name"].string_value = "Zelda Quixote-PHI " + "x" * 1_000
    _, metadata, code, details = _call(core, "Decide", request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    bad = error_details_pb2.BadRequest()
    assert _rich_status(metadata).details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["case.attributes.patient_name"]
    raw = dict(metadata)["grpc-status-details-bin"]
    assert (b"Zelda" in raw, "Zelda" in details) == (False, False), details
    assert "its text is not quoted" in details


def test_unknown_ruleset_or_version_is_not_found(core: RoutingCore) -> None:
    """NOT_FOUND names what is loaded."""
    request = decide_request()
    request.ruleset.name = "nope"
    _, _, code, details = _call(core, "Decide", request)
    assert (code, details) == (
        grpc.StatusCode.NOT_FOUND,
        "unknown ruleset 'nope'; loaded: patient-enquiries",
    )
    request.ruleset.name, request.ruleset.version = "patient-enquiries", "0.0.1"
    _, _, code, details = _call(core, "Decide", request)
    assert (code, details) == (
        grpc.StatusCode.NOT_FOUND,
        "ruleset 'patient-enquiries' has no version '0.0.1'; loaded versions: 2026.12.1",
    )


def test_no_ruleset_loaded_is_unavailable(tmp_path: Path) -> None:
    """UNAVAILABLE while nothing is loaded."""
    core = audited_core(RulesetRegistry(), tmp_path)
    _, _, code, details = _call(core, "Decide", decide_request())
    core.audit.close()
    assert (code, details) == (
        grpc.StatusCode.UNAVAILABLE,
        (
            "no ruleset is loaded on this server; its operators must fix the rulesets (the server "
            "log lists every problem) and restart or reload it; retry later or call another server"
        ),
    )


class _ExplodingCore:
    audit = None
    registry = RulesetRegistry()
    detail = "secret internal detail /etc/passwd"  # data, so no source line in a frame shows it

    def decide(self, _cmd: object, _before_record: object = None) -> None:
        raise RuntimeError(self.detail)


class _UnrecordableCore:
    audit = None
    registry = RulesetRegistry()

    def decide(self, _cmd: object, _before_record: object = None) -> None:
        raise AuditUnavailableError("the audit store cannot be written: disk I/O error")


def test_audit_store_unavailable_is_unavailable_and_returns_no_decision() -> None:
    """No decision without its record: UNAVAILABLE, and the response carries no decision."""
    response, _, code, details = _call(_UnrecordableCore(), "Decide", decide_request())
    assert (code, details) == (
        grpc.StatusCode.UNAVAILABLE,
        "the audit store cannot be written: disk I/O error",
    )
    assert not response.HasField("decision")


def test_retry_is_replayed_and_reuse_is_already_exists(core: RoutingCore) -> None:
    """Same request_id + input: the stored decision, flagged; other input: ALREADY_EXISTS."""
    first, _, _, _ = _call(core, "Decide", decide_request("req-r"))
    again, _, code, _ = _call(core, "Decide", decide_request("req-r"))
    assert code is grpc.StatusCode.OK
    assert again.replayed
    assert not first.replayed
    assert again.decision == first.decision
    _, _, code, details = _call(core, "Decide", decide_request("req-r", case_id="OTHER"))
    assert (code, details) == (
        grpc.StatusCode.ALREADY_EXISTS,
        (
            "request_id 'req-r' was already used with a different input (another case, roster, "
            "ruleset selector, now or explanation level); send a new request_id for a new request"
        ),
    )


def test_decision_log_rpcs(core: RoutingCore) -> None:
    """GetDecision returns the recorded decision; unknown ids are NOT_FOUND; bad tokens named."""
    decided, _, _, _ = _call(
        core, "Decide", decide_request("req-g", attributes={"patient_name": "x"})
    )
    decision_id = decided.decision.decision_id
    got, _, code, _ = _call(core, "GetDecision", pb.GetDecisionRequest(decision_id=decision_id))
    assert code is grpc.StatusCode.OK
    record = core.audit.get(decision_id)
    assert record is not None
    assert (got.seq, got.request_id, got.decision, got.record_hash) == (
        1,
        "req-g",
        decided.decision,
        record.record_hash,
    )
    _, _, code, details = _call(core, "GetDecision", pb.GetDecisionRequest(decision_id="dec_x"))
    assert (code, details) == (
        grpc.StatusCode.NOT_FOUND,
        (
            "no decision 'dec_x' in the decision log; check the id (decision ids start with dec_) "
            "and that this server writes to the store that decided it"
        ),
    )
    listed, _, code, _ = _call(core, "ListDecisions", pb.ListDecisionsRequest(case_id="CASE-T1"))
    assert [d.decision.decision_id for d in listed.decisions] == [decision_id]
    assert listed.next_page_token == ""
    _, metadata, code, _ = _call(
        core, "ListDecisions", pb.ListDecisionsRequest(page_token="garbage!")
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    bad = error_details_pb2.BadRequest()
    _rich_status(metadata).details[0].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["page_token"]


def test_a_record_that_does_not_rebuild_is_data_loss(core: RoutingCore, tmp_path: Path) -> None:
    """Its hashed decision edited into no decision: DATA_LOSS naming it (it was INTERNAL).

    The text is edited and its hash recomputed, so the row passes its own checks (only verify's
    link to the next record could tell): GetDecision and a ListDecisions page holding it; the
    message names the record and says what to run, never the exception.
    """
    decided, _, _, _ = _call(core, "Decide", decide_request("req-d"))
    decision_id = decided.decision.decision_id
    with closing(sqlite3.connect(tmp_path / "audit.db")) as conn, conn:
        prev, text = conn.execute("SELECT prev_hash, content FROM decisions").fetchone()
        head = text[: text.index('"decision":') + len('"decision":')]
        forged = head + '{"outcome":1}' + text[text.index(',"decision_id":') :]
        conn.execute(
            "UPDATE decisions SET content = ?, record_hash = ?", (forged, text_hash(prev, forged))
        )
    expected = (
        f"record 1 (decision {decision_id!r}) cannot be rebuilt from the decision log: its "
        "stored decision or the ruleset source it was decided with was edited or lost; run "
        "`caseroute audit verify` on the log"
    )
    for method, request in (
        ("GetDecision", pb.GetDecisionRequest(decision_id=decision_id)),
        ("ListDecisions", pb.ListDecisionsRequest(case_id=decided.decision.case_id)),
    ):
        _, metadata, code, details = _call(core, method, request)
        assert (code, details) == (grpc.StatusCode.DATA_LOSS, expected)
        assert _rich_status(metadata).code == code_pb2.DATA_LOSS


def test_a_row_edited_after_it_was_hashed_is_data_loss_never_the_edit(
    core: RoutingCore, tmp_path: Path
) -> None:
    """Columns edited beside an intact text: DATA_LOSS naming the decision and `audit verify`.

    GetDecision served the edited request_id and caller columns as the record (OK), and
    ListDecisions listed it; now neither serves the row, and the message says what to run.
    """
    decided, _, _, _ = _call(core, "Decide", decide_request("req-e"))
    decision_id = decided.decision.decision_id
    with closing(sqlite3.connect(tmp_path / "audit.db")) as conn, conn:
        conn.execute("UPDATE decisions SET request_id = 'r-forged', caller = 'forger'")
    expected = (
        "record 1 was edited or moved: its content no longer matches its hash (decision "
        f"{decision_id!r}): it is not served, since the decision log was edited after it was "
        "recorded; run `caseroute audit verify` on the log and restore it from a copy you trust"
    )
    for method, request in (
        ("GetDecision", pb.GetDecisionRequest(decision_id=decision_id)),
        ("ListDecisions", pb.ListDecisionsRequest(case_id=decided.decision.case_id)),
        ("ListDecisions", pb.ListDecisionsRequest()),
    ):
        reply, metadata, code, details = _call(core, method, request)
        assert (code, details) == (grpc.StatusCode.DATA_LOSS, expected)
        assert _rich_status(metadata).code == code_pb2.DATA_LOSS
        assert "forge" not in str(reply)


def test_an_input_column_in_other_bytes_is_named_as_verify_names_it(
    core: RoutingCore, tmp_path: Path
) -> None:
    """The input column meaning the same in other bytes: refused naming the column."""
    decided, _, _, _ = _call(core, "Decide", decide_request("req-i"))
    decision_id = decided.decision.decision_id
    with closing(sqlite3.connect(tmp_path / "audit.db")) as conn, conn:
        conn.execute("UPDATE decisions SET input = replace(input, '{', '{ ')")
    _, _, code, details = _call(core, "GetDecision", pb.GetDecisionRequest(decision_id=decision_id))
    assert (code, details.split(" (decision")[0]) == (
        grpc.StatusCode.DATA_LOSS,
        "record 1 was edited: its input column is not byte for byte what its hashed text holds",
    )


def test_unexpected_errors_are_internal_without_detail(caplog: pytest.LogCaptureFixture) -> None:
    """INTERNAL with a generic message quoting the request id; the log gets type and frames."""
    _, metadata, code, details = _call(_ExplodingCore(), "Decide", decide_request("req-9"))
    assert code is grpc.StatusCode.INTERNAL
    assert details == "internal error; quote reference 'req-9' to the caseroute operators"
    assert _rich_status(metadata).code == code_pb2.INTERNAL
    (logged,) = caplog.records
    # The type and where it failed reach the log; the exception's text (which may quote case
    # values) reaches neither the caller nor the log.
    assert (logged.name, logged.getMessage().splitlines()[0], logged.exc_info) == (
        "caseroute.grpc",
        (
            "internal error serving request 'req-9': RuntimeError (message withheld: it may quote "
            "case values)"
        ),
        None,
    )
    assert "secret internal detail" not in caplog.text
    assert ", in decide\n" in logged.getMessage()  # the frame that raised


def test_batch_consumes_capacity_in_order(core: RoutingCore, tmp_path: Path) -> None:
    """No agent is assigned beyond capacity within a batch; later cases see earlier ones."""
    cases = [convert.case_to_proto(make_case(case_id=f"C{i}")) for i in range(7)]
    request = pb.DecideBatchRequest(
        request_id="batch-1",
        cases=cases,
        roster=convert.roster_to_proto(ROSTER),
        now=decide_request().now,
    )
    response, _, code, _ = _call(core, "DecideBatch", request)
    assert code is grpc.StatusCode.OK
    agents = [d.agent_id for d in response.decisions]
    local = audited_core(core.registry, tmp_path / "local")
    expected = local.decide(convert.batch_command(request)).decisions
    local.audit.close()
    assert [(d.decision_id, d.agent_id) for d in response.decisions] == [
        (d.decision_id, d.agent_id) for d in expected
    ]
    free = {a.agent_id: a.capacity.max - a.capacity.active for a in ROSTER.agents}
    assert len(set(agents)) == 3  # the load spreads over every agent with room
    assert all(agents.count(agent_id) <= free[agent_id] for agent_id in set(agents))


def test_batch_errors_name_the_case_index(core: RoutingCore) -> None:
    """A bad case in a batch is reported as cases[i].field."""
    good = convert.case_to_proto(make_case())
    bad = convert.case_to_proto(make_case())
    bad.urgency = pb.Urgency.ValueType(99)  # a value this server does not know
    request = pb.DecideBatchRequest(
        request_id="b", cases=[good, bad], roster=convert.roster_to_proto(ROSTER)
    )
    _, _, code, details = _call(core, "DecideBatch", request)
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        (
            "invalid request: 1 problem(s); first: cases[1].urgency: must be one of "
            "URGENCY_ROUTINE, URGENCY_URGENT, URGENCY_CRITICAL; got 99 (every problem is in the "
            "google.rpc.BadRequest details)"
        ),
    )
