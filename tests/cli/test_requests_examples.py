"""examples/requests/*.json work unchanged with protobuf's JSON parser, gRPC and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import grpc_testing
import pytest
from google.protobuf import json_format

from caseroute.cli import main
from caseroute.domain.codec import lower_camel, parse_case, parse_roster
from caseroute.domain.dialect import case_data_from_wire
from caseroute.domain.errors import RequestError
from caseroute.domain.fingerprint import input_sha256
from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.service import DecideCommand, RoutingCore
from caseroute.service.routing import request_sha256
from caseroute.testing import REFERENCE_HOME, REFERENCE_RULESET, REPO_ROOT
from caseroute.v1 import routing_pb2 as pb

EXAMPLES = REPO_ROOT / "examples"
REQUESTS = sorted((EXAMPLES / "requests").glob("*.json"))
CASES = sorted((EXAMPLES / "cases").glob("*.json"))
SERVICE = pb.DESCRIPTOR.services_by_name["RoutingService"]
NOW = "2026-11-21T10:00:00Z"

# input_sha256 of each example case with examples/roster.json, computed before the JSON dialect
# (from the files in their short spelling): the proto spelling must not change any of them.
HASHES_BEFORE = {
    "clinical-tx": "e6de7c8b96acd955a8f13b16cb301220d7dd1202ae65d45646580ee5e06f051f",
    "safeguarding": "e6a19dd2e56f380d9e5cca570938f53cfb23ea2e78ca66127887eded99553d11",
    "missing-location": "f6fa035db9582540d27273aef729ac91fb1b94821a69533d0748c9fc64c1a812",
    "held-for-previous-nurse": "4cedebb4312b4a0b0d4d30dd0c5652bdb57ce1a31c2b41bd15d860458f388cfd",
    "unhappy-sla-at-risk": "0401c95a975ec469b046c171e084e77f18695108904b4bed1df4fe74bc0928cb",
}
# The case id an example had when its hashes were pinned: unhappy-sla-at-risk shared
# CASE-1002 with held-for-previous-nurse until it became CASE-1005 (review R37b 15).
PINNED_CASE_ID = {"unhappy-sla-at-risk": "CASE-1002"}
# request_sha256 of DecideCommand("r1", "", "", (case,), roster, None, agent_detail=True), the
# idempotency check of a retry, computed before the JSON dialect.
REQUEST_HASH_BEFORE = {
    "clinical-tx": "3ac4893f22cb67cfbdca3fbb41bf9a228ac12cb3aa499a939e80e593d77ac901",
    "unhappy-sla-at-risk": "60f119ea2dedf32726b8f1b2d9d285311b505aa0add7b0cdb2a3137bbc09d0d7",
}


def _message(path: Path) -> pb.DecideRequest | pb.DecideBatchRequest:
    text = path.read_text()
    kind = pb.DecideBatchRequest if "cases" in json.loads(text) else pb.DecideRequest
    return json_format.Parse(text, kind(), ignore_unknown_fields=False)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["decide", "--ruleset", str(REFERENCE_RULESET), "--engine", "python", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _served(core: RoutingCore, request: Any) -> Any:
    method = "DecideBatch" if isinstance(request, pb.DecideBatchRequest) else "Decide"
    server = grpc_testing.server_from_dictionary(
        {SERVICE: RoutingServicer(core)}, grpc_testing.strict_real_time()
    )
    rpc = server.invoke_unary_unary(SERVICE.methods_by_name[method], (), request, None)
    response, _, code, details = rpc.termination()
    assert (code, details) == (grpc.StatusCode.OK, "")
    return response


def test_the_required_examples_exist() -> None:
    """The ready-to-send requests the docs name are all there."""
    names = {p.stem for p in REQUESTS}
    assert {
        "decide-clinical-tx",
        "decide-safeguarding",
        "decide-missing-location",
        "decide-held-for-previous-nurse",
        "decide-batch",
    } <= names


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.stem)
def test_every_example_request_is_protobuf_json(path: Path) -> None:
    """json_format (what grpcurl and gateways do) parses each file, no unknown fields."""
    message = _message(path)
    assert (message.request_id, message.now.ToJsonString()) == (f"example-{path.stem}", NOW)


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.stem)
def test_cli_decides_an_example_request_as_the_servicer_does(
    path: Path, core: RoutingCore, capsys: pytest.CaptureFixture[str]
) -> None:
    """`decide --request FILE --json` prints exactly what gRPC returns for the parsed message."""
    message = _message(path)
    response = _served(core, message)
    code, out, err = _cli(capsys, "--request", str(path), "--json")
    assert (code, err) == (0, "")
    if isinstance(message, pb.DecideBatchRequest):
        printed = json_format.Parse(out, pb.DecideBatchResponse(), ignore_unknown_fields=False)
        assert list(printed.decisions) == list(response.decisions)
        assert printed.now == response.now
    else:
        printed_decision = json_format.Parse(out, pb.Decision(), ignore_unknown_fields=False)
        assert printed_decision == response.decision


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_example_files_are_protobuf_json(path: Path) -> None:
    """examples/cases/*.json parse as caseroute.v1.Case, examples/roster.json as Roster."""
    json_format.Parse(path.read_text(), pb.Case(), ignore_unknown_fields=False)
    roster = json_format.Parse(
        (EXAMPLES / "roster.json").read_text(), pb.Roster(), ignore_unknown_fields=False
    )
    channel = json.loads(path.read_text())["channel"]
    assert (len(roster.agents), channel.startswith("CHANNEL_")) == (10, True)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_the_proto_spelling_keeps_every_input_hash(path: Path) -> None:
    """Rewriting the examples in proto spelling changed no input hash (decision ids, retries)."""
    data = json.loads(path.read_text())
    data["case_id"] = PINNED_CASE_ID.get(path.stem, data["case_id"])
    case = parse_case(data)
    roster = parse_roster(json.loads((EXAMPLES / "roster.json").read_text()))
    assert input_sha256(case, roster) == HASHES_BEFORE[path.stem]
    if path.stem in REQUEST_HASH_BEFORE:
        command = DecideCommand("r1", "", "", (case,), roster, None, agent_detail=True)
        assert request_sha256(command) == REQUEST_HASH_BEFORE[path.stem]


def _camel(data: Any) -> Any:
    """Every field name in lowerCamelCase (attribute map keys are not field names)."""
    if isinstance(data, list):
        return [_camel(item) for item in data]
    if not isinstance(data, dict):
        return data
    return {lower_camel(k): (v if k == "attributes" else _camel(v)) for k, v in data.items()}


@pytest.mark.parametrize("spelling", ["short", "camel"])
@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_a_case_in_each_spelling_gets_the_same_decision(
    path: Path, spelling: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The short spelling (`phone`) and camelCase names decide as the proto spelling does."""
    data = json.loads(path.read_text())
    other = case_data_from_wire(data) if spelling == "short" else _camel(data)
    assert other != data
    variant = tmp_path / "case.json"
    variant.write_text(json.dumps(other))
    roster = str(EXAMPLES / "roster.json")
    runs = [
        _cli(capsys, "--case", str(p), "--roster", roster, "--now", NOW, "--json")
        for p in (path, variant)
    ]
    assert runs[0] == runs[1]
    assert runs[0][0] == 0


def test_decide_json_is_a_v1_decision(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints proto enum names and the rounded sentiment change (-0.2, not -0.1999...)."""
    code, out, _ = _cli(
        capsys,
        "--case",
        str(EXAMPLES / "cases" / "clinical-tx.json"),
        "--roster",
        str(EXAMPLES / "roster.json"),
        "--now",
        NOW,
        "--json",
    )
    data = json.loads(out)
    assert (
        code,
        data["outcome"],
        data["priority"],
        data["explanation"]["signals"]["sentiment"]["change"],
    ) == (0, "OUTCOME_ASSIGN", "PRIORITY_NORMAL", -0.2)
    json_format.ParseDict(data, pb.Decision(), ignore_unknown_fields=False)


def test_request_excludes_the_flags_it_holds(capsys: pytest.CaptureFixture[str]) -> None:
    """--request with --case or --now is a usage error naming the flags to drop."""
    path = str(EXAMPLES / "requests" / "decide-clinical-tx.json")
    code, out, err = _cli(capsys, "--request", path, "--now", NOW, "--request-id", "x")
    assert (code, out, err) == (
        2,
        "",
        (
            "caseroute: --request FILE holds the case, roster, now, request_id and ruleset: drop "
            "--now, --request-id (or edit the file)\n"
        ),
    )


def test_decide_without_input_says_what_to_give(capsys: pytest.CaptureFixture[str]) -> None:
    """Neither --case/--roster nor --request: the usage error names both ways."""
    assert _cli(capsys) == (
        2,
        "",
        (
            "caseroute: give --case FILE and --roster FILE, or --request FILE (a DecideRequest, "
            "see examples/requests/)\n"
        ),
    )


def test_a_request_for_another_ruleset_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A request naming a ruleset the local --ruleset is not says which it asked for."""
    data = json.loads((EXAMPLES / "requests" / "decide-clinical-tx.json").read_text())
    data["ruleset"] = {"name": "other", "version": "9"}
    path = tmp_path / "request.json"
    path.write_text(json.dumps(data))
    code, _, err = _cli(capsys, "--request", str(path))
    assert (code, err) == (
        2,
        (
            f"caseroute: the request asks for ruleset other@9; {REFERENCE_RULESET} holds "
            "patient-enquiries@2026.12.1: pass --ruleset pointing at the one it names\n"
        ),
    )


def test_a_request_pinning_a_version_decides_with_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """ruleset.version picks that version's directory from the --ruleset home."""
    data = json.loads((EXAMPLES / "requests" / "decide-clinical-tx.json").read_text())
    data["ruleset"]["version"] = "2026.11.1"
    path = tmp_path / "request.json"
    path.write_text(json.dumps(data))
    code, out, _ = _cli(capsys, "--request", str(path), "--json", "--ruleset", str(REFERENCE_HOME))
    assert (code, json.loads(out)["ruleset"]["version"]) == (0, "2026.11.1")


def test_an_invalid_request_names_the_field_as_grpc_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad enum in a batch request file is reported at cases[i] with the proto names."""
    data = json.loads((EXAMPLES / "requests" / "decide-batch.json").read_text())
    data["cases"][1]["channel"] = "fax"
    path = tmp_path / "request.json"
    path.write_text(json.dumps(data))
    code, out, err = _cli(capsys, "--request", str(path))
    assert (code, out, err) == (
        2,
        "",
        (
            "caseroute: invalid request (1 problem(s)):\n"
            "  - cases[1].channel: must be one of CHANNEL_EMAIL, CHANNEL_PHONE, CHANNEL_PORTAL, "
            "CHANNEL_CHAT; got 'fax'\n"
        ),
    )


@pytest.mark.parametrize("path", REQUESTS, ids=lambda p: p.stem)
def test_an_example_printed_with_its_defaults_decides_as_the_file_does(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What Java's includingDefaultValueFields / Go's EmitUnpopulated print reads the same.

    Review R34a F4: `"roster_sha256": ""` and `"ruleset": {"version": ""}` (proto3 defaults,
    unset over gRPC) were refused by the CLI as empty strings.
    """
    full = json_format.MessageToDict(
        _message(path), preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    assert full["roster_sha256"] == ""
    printed = tmp_path / path.name
    printed.write_text(json.dumps(full))
    code, out, err = _cli(capsys, "--request", str(path), "--json")
    assert (code, err) == (0, "")
    assert _cli(capsys, "--request", str(printed), "--json") == (0, out, "")


def test_an_empty_request_id_and_selector_read_as_unset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`"request_id": ""` and an empty selector: a derived id, the default ruleset."""
    data = json.loads((EXAMPLES / "requests" / "decide-clinical-tx.json").read_text())
    data.pop("request_id")
    data.pop("ruleset", None)
    unset = tmp_path / "unset.json"
    unset.write_text(json.dumps(data))
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({**data, "request_id": "", "ruleset": {"name": "", "version": ""}}))
    expected = _cli(capsys, "--request", str(unset), "--json")
    assert expected[0] == 0
    assert _cli(capsys, "--request", str(empty), "--json") == expected


@pytest.mark.parametrize(("written", "read"), [(2.0, 2), (1e1, 10)])
def test_a_whole_number_written_as_a_float_is_read_as_protobuf_reads_it(
    written: float, read: int
) -> None:
    """`"min_level": 2.0` was `must be an integer, got number 2.0` (R34a F4); 2.5 still is."""
    data = json.loads((EXAMPLES / "cases" / "clinical-tx.json").read_text())
    data["required_skills"] = [{"name": "triage", "min_level": written}]
    skill = parse_case(data).required_skills[0]
    assert (skill.min_level, type(skill.min_level)) == (read, int)
    message = json_format.ParseDict({"required_skills": data["required_skills"]}, pb.Case())
    assert message.required_skills[0].min_level == read  # protobuf's own reading
    data["required_skills"] = [{"name": "triage", "min_level": 2.5}]
    with pytest.raises(RequestError, match=r"case\.required_skills\[0\]\.min_level: .*integer"):
        parse_case(data)


def test_every_example_case_has_its_own_case_id() -> None:
    """Review R37b 15: two example cases were both CASE-1002 (a reader's log mixed them)."""
    ids = [json.loads(p.read_text())["case_id"] for p in CASES]
    assert sorted(ids) == sorted(set(ids))
