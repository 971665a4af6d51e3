"""`decide --request FILE --server` sends an example request; it gets what grpcurl gets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from caseroute.cli import main
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import RunningServer
from caseroute.testing import REPO_ROOT
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from tests.grpc_api.conftest import serving_reference

REQUESTS = REPO_ROOT / "examples" / "requests"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real server with the reference rulesets (python engine), for the module."""
    with serving_reference(tmp_path_factory.mktemp("audit"), engine=EngineKind.PYTHON) as running:
        yield running


def _grpcurl_like(port: int, path: Path) -> pb.DecideResponse | pb.DecideBatchResponse:
    """What grpcurl -d @ does with the file: json_format.Parse, then the call."""
    text = path.read_text()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        if "cases" in json.loads(text):
            batch = json_format.Parse(text, pb.DecideBatchRequest())
            response: pb.DecideResponse | pb.DecideBatchResponse = stub.DecideBatch(batch)
        else:
            response = stub.Decide(json_format.Parse(text, pb.DecideRequest()))
    return response


@pytest.mark.parametrize("name", ["decide-clinical-tx", "decide-batch"])
def test_cli_and_grpcurl_get_the_same_stored_decision(
    name: str, server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same file through the CLI and through protobuf JSON: one request, one decision."""
    path = REQUESTS / f"{name}.json"
    target = f"127.0.0.1:{server.port}"
    code = main(["decide", "--request", str(path), "--server", target, "--json"])
    out = capsys.readouterr().out
    response = _grpcurl_like(server.port, path)
    assert response.replayed  # the CLI's call came first with the same request_id and input
    if isinstance(response, pb.DecideBatchResponse):
        printed = json_format.Parse(out, pb.DecideBatchResponse())
        assert (code, list(printed.decisions)) == (0, list(response.decisions))
    else:
        assert (code, json_format.Parse(out, pb.Decision())) == (0, response.decision)
