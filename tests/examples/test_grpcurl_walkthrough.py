"""docs/serving.md, "Calling it with grpcurl": the walkthrough cannot rot silently.

Without grpcurl: every request body the walkthrough sends parses with
google.protobuf.json_format (what grpcurl does) into its method's request message, and the ids
and field violations it shows are what a server gives. With grpcurl on PATH: each `$` command
runs against a real server and prints the lines shown (`...` cuts a long reply).
"""

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from caseroute.grpc_api.auth import AuthConfig
from caseroute.grpc_api.server import RunningServer
from caseroute.grpc_api.tls import ServerTls
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from tests.grpc_api.conftest import serving_reference
from tests.grpc_api.test_tls import Pki, pki  # noqa: F401 - the fixture, used by name

from .conftest import REPO_ROOT

SERVING = REPO_ROOT / "docs" / "serving.md"
SECTION = "## Calling it with grpcurl"
GRPCURL = shutil.which("grpcurl")
METHOD = re.compile(r"caseroute\.v1\.\w+/\w+")
CALLER = "caller-token-0123456789abcdef"
"""The caller token of the protected server (step 7 reads it from `caller.token`)."""
SERVER_OF_STEP = ["plain"] * 9 + ["protected", "protected", "mtls"]
"""Which server each `$` command of the walkthrough talks to, in order."""


@dataclass(frozen=True)
class Step:
    """One `$` command of the walkthrough and the output lines it shows."""

    command: str
    shown: list[str]


def walkthrough() -> list[Step]:
    """The `$` commands of the section's console blocks, in order, with their output."""
    text = SERVING.read_text()
    assert SECTION in text, f"docs/serving.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    steps = []
    for block in re.findall(r"```console\n(.*?)```", section, flags=re.DOTALL):
        for chunk in re.split(r"^\$ ", block, flags=re.MULTILINE)[1:]:
            command, *output = chunk.rstrip("\n").split("\n")
            steps.append(Step(command, output))
    return steps


def sent(command: str) -> tuple[str, str] | None:
    """The method a command calls and the JSON body it sends (``-d '...'`` or ``-d @ < FILE``)."""
    words = shlex.split(command)
    methods = [word for word in words if METHOD.fullmatch(word)]
    if "-d" not in words:
        assert methods == []
        return None
    body = words[words.index("-d") + 1]
    if body == "@":
        body = (REPO_ROOT / words[words.index("<") + 1]).read_text()
    (method,) = methods
    return method, body


def body_of(step: Step) -> str:
    """The JSON body a step sends."""
    call = sent(step.command)
    assert call is not None, step.command
    return call[1]


def request_message(method: str) -> Message:
    """An empty request message of ``caseroute.v1.Service/Method``."""
    service, name = method.split("/")
    found = descriptor_pool.Default().FindServiceByName(service).FindMethodByName(name)
    return message_factory.GetMessageClass(found.input_type)()


def shown_json(step: Step) -> dict[str, object]:
    """The JSON object a step shows in full (its output has no `...` cut)."""
    assert "..." not in step.shown
    loaded: dict[str, object] = json.loads("\n".join(step.shown))
    return loaded


def test_the_walkthrough_sends_every_method_a_caller_needs() -> None:
    """Decide (ready file, invalid twice, token, TLS), DecideBatch, GetDecision, ListDecisions."""
    calls = [call[0].split(".")[-1] for step in walkthrough() if (call := sent(step.command))]
    assert calls == [
        "RoutingService/Decide",
        "RoutingService/Decide",
        "RoutingService/Decide",
        "RoutingService/DecideBatch",
        "DecisionLog/GetDecision",
        "DecisionLog/ListDecisions",
        "RoutingService/Decide",
        "RoutingService/Decide",
        "RoutingService/Decide",
    ]
    assert len(walkthrough()) == len(SERVER_OF_STEP)


def test_every_body_the_walkthrough_sends_parses_as_its_methods_request() -> None:
    """Each body, inline or a file under examples/, is valid protobuf JSON for its request type."""
    parsed = []
    for step in walkthrough():
        if call := sent(step.command):
            method, body = call
            message = json_format.Parse(body, request_message(method))
            parsed.append((method, type(message).DESCRIPTOR.full_name, message.ByteSize() > 0))
    assert [(kind, non_empty) for _, kind, non_empty in parsed] == [
        ("caseroute.v1.DecideRequest", True),
        ("caseroute.v1.DecideRequest", True),
        ("caseroute.v1.DecideRequest", True),
        ("caseroute.v1.DecideBatchRequest", True),
        ("caseroute.v1.GetDecisionRequest", True),
        ("caseroute.v1.ListDecisionsRequest", True),
        ("caseroute.v1.DecideRequest", True),
        ("caseroute.v1.DecideRequest", True),
        ("caseroute.v1.DecideRequest", True),
    ]


def test_the_ids_and_violations_shown_are_what_a_fresh_server_gives(tmp_path: Path) -> None:
    """The decision ids, `seq` and BadRequest of the walkthrough match a real server's replies."""
    steps = walkthrough()
    decide, invalid, formatted, batch, get = steps[3:8]
    with (
        serving_reference(tmp_path) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        routing = routing_pb2_grpc.RoutingServiceStub(channel)
        decided = routing.Decide(json_format.Parse(body_of(decide), pb.DecideRequest()))
        batched = routing.DecideBatch(json_format.Parse(body_of(batch), pb.DecideBatchRequest()))
        with pytest.raises(grpc.RpcError) as refused:
            routing.Decide(json_format.Parse(body_of(invalid), pb.DecideRequest()))
        asked = json.loads(body_of(get))
    shown_id = f'    "decision_id": "{decided.decision.decision_id}",'
    assert (decide.shown[2], asked["decision_id"]) == (shown_id, decided.decision.decision_id)
    assert get.shown[1:2] == ['  "seq": "2",']  # the startup load is seq 1
    first = batched.decisions[0].decision_id
    assert batch.shown[3] == f'      "decision_id": "{first}",'
    call: Any = refused.value  # a unary error is also the grpc.Call, trailers included
    status = status_pb2.Status.FromString(dict(call.trailing_metadata())["grpc-status-details-bin"])
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    error = shown_json(formatted)
    assert error["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0] == status.code
    assert error["message"] == status.message
    assert error["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            **json_format.MessageToDict(bad_request, preserving_proto_field_name=True),
        }
    ]


def expected_exit(shown: list[str]) -> int:
    """The exit status grpcurl gives for the output shown: 0, or 64 + the gRPC status code."""
    if shown[:1] == ["ERROR:"]:
        name = re.sub(r"(?<!^)([A-Z])", r"_\1", shown[1].removeprefix("  Code: ")).upper()
        code: int = grpc.StatusCode[name].value[0]
        return 64 + code
    if shown[:1] == ["{"] and shown[1].startswith('  "code": '):
        return 64 + int(shown[1].removeprefix('  "code": ').rstrip(","))
    return 0


def test_each_grpcurl_command_prints_the_lines_shown(pki: Pki, tmp_path: Path) -> None:  # noqa: F811 - the imported fixture
    """Every `$ grpcurl` command of the walkthrough, run for real, prints what the doc shows."""
    if GRPCURL is None:
        pytest.skip(
            "grpcurl is not on PATH: install it from https://github.com/fullstorydev/grpcurl "
            "(a release, `brew install grpcurl`, or `go install "
            "github.com/fullstorydev/grpcurl/cmd/grpcurl@latest`)"
        )
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(REPO_ROOT / "examples")
    (work / "caller.token").write_text(f"{CALLER}\n")
    for name, source in (("ca.pem", pki.ca), ("client.pem", pki.client_cert)):
        shutil.copy(source, work / name)
    shutil.copy(pki.client_key, work / "client.key")
    tokens = tmp_path / "caller.tokens"
    tokens.write_text(f"flow-engine {CALLER}\n")
    tokens.chmod(0o600)
    tls = ServerTls(pki.server_cert, pki.server_key, client_ca=pki.ca)
    with (
        serving_reference(tmp_path / "plain") as plain,
        serving_reference(
            tmp_path / "protected", auth=AuthConfig(caller_token_file=tokens)
        ) as protected,
        serving_reference(tmp_path / "mtls", tls=tls) as mtls,
    ):
        servers: dict[str, RunningServer] = {"plain": plain, "protected": protected, "mtls": mtls}
        for step, which in zip(walkthrough(), SERVER_OF_STEP, strict=True):
            port = servers[which].port
            command = step.command.replace(":50051 ", f":{port} ")
            ran = subprocess.run(
                ["bash", "-c", command],  # noqa: S607 - bash from PATH
                cwd=work,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            printed = (ran.stdout + ran.stderr).splitlines()
            if "..." in step.shown:  # a cut reply: the lines shown, then more
                cut = step.shown.index("...")
                printed = [*printed[:cut], "..."] if len(printed) > cut else printed
            assert (step.command, ran.returncode, printed) == (
                step.command,
                expected_exit(step.shown),
                step.shown,
            )
