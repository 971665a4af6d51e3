"""Shared gRPC fixtures: a core over the reference ruleset and request builders."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from caseroute.domain.roster import Capacity, Role
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api import convert
from caseroute.grpc_api._generated import routing_pb2 as pb
from caseroute.service import RoutingCore, RulesetRegistry
from caseroute.testing import (
    NOW,
    audited_core,
    make_agent,
    make_case,
    make_roster,
    reference_ruleset,
)

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
    """The reference ruleset, loaded once with durable_rules."""
    reg = RulesetRegistry()
    reg.add(reference_ruleset(EngineKind.DURABLE))
    yield reg
    reg.close()


@pytest.fixture
def core(registry: RulesetRegistry, tmp_path: Path) -> Iterator[RoutingCore]:
    """A core over the shared registry, recording to a fresh decision log."""
    made = audited_core(registry, tmp_path)
    yield made
    made.audit.close()
