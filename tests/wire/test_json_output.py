"""Output in the JSON dialect: decisions and exported records are caseroute.v1 message JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from google.protobuf import json_format

from caseroute.cli import main
from caseroute.domain.case import AttributeValue
from caseroute.domain.decision_codec import decision_from_dict
from caseroute.engine.decide import decide
from caseroute.replay.source import ExportFormatError
from caseroute.service import DecideCommand, DecisionLog, RoutingCore
from caseroute.service.routing import request_decision_id
from caseroute.testing import NOW, make_agent, make_case, make_roster, reference_ruleset
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from caseroute.wire.json_dialect import (
    batch_to_json,
    decision_to_json,
    record_from_export_line,
    record_to_json,
)

ATTRIBUTES: dict[str, AttributeValue] = {"patient_name": "Ada Lovelace", "visits": 3, "vip": True}


def _recorded(core: RoutingCore) -> DecisionLog:
    roster = make_roster(make_agent("a1"), make_agent("a2"))
    cases = (make_case(case_id="C1", attributes=ATTRIBUTES), make_case(case_id="C2"))
    core.decide(DecideCommand("r1", "", "", cases, roster, NOW, batch=True))
    return DecisionLog(core.audit)


def test_a_decision_is_v1_decision_json() -> None:
    """decision_to_json is MessageToDict of convert's message: proto names, enums by name."""
    decision = decide(make_case(), make_roster(make_agent("a1")), reference_ruleset(), NOW)
    data = decision_to_json(decision)
    parsed = json_format.ParseDict(data, pb.Decision(), ignore_unknown_fields=False)
    assert parsed == convert.decision_to_proto(decision)
    assert (data["outcome"], data["priority"], data["agent_id"]) == (
        "OUTCOME_ASSIGN",
        "PRIORITY_NORMAL",
        "a1",
    )


def test_a_batch_is_decide_batch_response_json() -> None:
    """batch_to_json writes the decisions and the instant, as DecideBatchResponse."""
    decision = decide(make_case(), make_roster(make_agent("a1")), reference_ruleset(), NOW)
    data = batch_to_json((decision, decision), NOW)
    parsed = json_format.ParseDict(data, pb.DecideBatchResponse(), ignore_unknown_fields=False)
    assert (len(parsed.decisions), data["now"]) == (2, "2026-11-21T10:00:00Z")


def test_audit_export_writes_audited_decision_lines(
    core: RoutingCore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each export line parses as AuditedDecision; its input_json is the dialect, PHI masked."""
    log = _recorded(core)
    assert main(["audit", "export", "--audit-db", str(tmp_path / "audit.db")]) == 0
    lines = capsys.readouterr().out.splitlines()
    messages = [
        json_format.Parse(line, pb.AuditedDecision(), ignore_unknown_fields=False) for line in lines
    ]
    first = log.get(request_decision_id("r1", 0))
    assert messages[0] == convert.audited_to_proto(first)
    stored_case = json.loads(messages[0].input_json)["case"]
    assert stored_case["channel"] == "CHANNEL_PHONE"
    assert stored_case["attributes"]["visits"] == {"number_value": 3}
    assert stored_case["attributes"]["patient_name"]["string_value"].startswith("hmac-sha256:")
    assert "Ada" not in "".join(lines)
    json_format.ParseDict(stored_case, pb.Case(), ignore_unknown_fields=False)
    assert [m.seq for m in messages] == [1, 2]
    assert json.loads(lines[0])["seq"] == "1"  # int64 is a JSON string in protobuf's mapping


def test_audit_show_json_is_the_audited_decision_export_writes(
    core: RoutingCore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`audit show --json` prints the AuditedDecision that export writes and GetDecision returns."""
    log = _recorded(core)
    decision_id = request_decision_id("r1", 0)
    db = str(tmp_path / "audit.db")
    assert main(["audit", "show", decision_id, "--json", "--audit-db", db]) == 0
    shown = json_format.Parse(
        capsys.readouterr().out, pb.AuditedDecision(), ignore_unknown_fields=False
    )
    assert shown == convert.audited_to_proto(log.get(decision_id))
    assert main(["audit", "export", "--audit-db", db]) == 0
    exported = capsys.readouterr().out.splitlines()[0]
    assert shown == json_format.Parse(exported, pb.AuditedDecision())


def test_export_lines_read_back_as_the_stored_records(core: RoutingCore) -> None:
    """Replay's reader turns an AuditedDecision line (and an old record line) into the record."""
    log = _recorded(core)
    audited = log.get(request_decision_id("r1", 0))
    record = audited.record
    line = json.loads(json.dumps(record_to_json(record, core.audit.get_blob)))
    # The log stores the rules as data (issue 13); the line carries them rendered, as
    # caseroute.v1 has no field for the data: the same decision, in the older stored form.
    rebuilt = record_from_export_line(line)
    assert (replace(rebuilt, decision=record.decision), decision_from_dict(rebuilt.decision)) == (
        record,
        audited.decision,
    )
    assert record_from_export_line(record.as_dict()) == record


def test_a_line_that_is_no_audited_decision_says_why() -> None:
    """A line with input_json but a bad field is refused naming the message it should be."""
    with pytest.raises(ExportFormatError) as exc:
        record_from_export_line({"input_json": "{}", "seq": "x"})
    assert str(exc.value).startswith("is not a caseroute.v1.AuditedDecision: ")
