"""Shared gRPC fixtures: the engine of record's registry, request builders, a real server."""

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from caseroute.domain.roster import Capacity, Role
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import RunningServer, ServerConfig, build_server
from caseroute.service import RulesetRegistry
from caseroute.testing import (
    NOW,
    REFERENCE_RULESET,
    audit_config,
    make_agent,
    make_case,
    make_roster,
    reference_ruleset,
)
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert

ROSTER = make_roster(
    make_agent("a1"), make_agent("a2", capacity=Capacity(5, 3)), make_agent("s1", role=Role.SENIOR)
)


def decide_request(request_id: str = "req-1", **case_overrides: object) -> pb.DecideRequest:
    """A valid DecideRequest for a Texas clinical case against ROSTER at NOW."""
    return pb.DecideRequest(
        request_id=request_id,
        case=convert.case_to_proto(make_case(**case_overrides)),
        roster=convert.roster_to_proto(ROSTER),
        now=convert.datetime_to_timestamp(NOW),
    )


@pytest.fixture(scope="session")
def registry() -> Iterator[RulesetRegistry]:
    """The reference ruleset, loaded once with durable_rules.

    Overrides the python-engine ``registry`` of tests/conftest.py for the gRPC tests, so the
    shared ``core`` fixture decides here with the engine of record.
    """
    reg = RulesetRegistry()
    reg.add(reference_ruleset(EngineKind.DURABLE))
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def python_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A module's in-process server on a free port: the reference ruleset, the python engine."""
    with serving_reference(tmp_path_factory.mktemp("audit"), engine=EngineKind.PYTHON) as server:
        yield server


@contextmanager
def serving_reference(audit_dir: Path, **settings: Any) -> Iterator[RunningServer]:
    """An in-process server on a free port with the reference ruleset loaded; stopped on exit.

    Args:
        audit_dir: Directory for the server's decision log (test masking key).
        **settings: Further ``ServerConfig`` fields (``engine``, ``threads``, ``tls``...).
    """
    config = ServerConfig(
        rulesets=REFERENCE_RULESET.parent, port=0, audit=audit_config(audit_dir), **settings
    )
    server = build_server(config, reuse_port=False)
    try:
        server.load(config)
        yield server
    finally:
        server.stop(1)


@pytest.fixture
def channel(running: RunningServer) -> Iterator[grpc.Channel]:
    """A channel with gRPC's default options to the test module's ``running`` server."""
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as chan:
        yield chan


def served_refusal(
    port: int,
    request: Any,
    method: str = "Decide",
    *,
    stub: Callable[[grpc.Channel], Any] = routing_pb2_grpc.RoutingServiceStub,
    metadata: Sequence[tuple[str, str]] = (),
) -> tuple[grpc.StatusCode, list[tuple[str, str]], str]:
    """Send ``request`` to the server on ``port``, which must refuse it with a BadRequest.

    Args:
        port: The server's port.
        request: The request message.
        method: The RPC's name.
        stub: The generated stub of the RPC's service (default: RoutingService).
        metadata: Call metadata (an admin call's bearer token).

    Returns:
        The status code, each violation as (field, description), and the status details.
    """
    with (
        grpc.insecure_channel(f"127.0.0.1:{port}") as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        getattr(stub(channel), method)(request, timeout=30, metadata=metadata)
    error: Any = caught.value
    status = rpc_status.from_call(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    return error.code(), [(v.field, v.description) for v in bad.field_violations], error.details()
