"""Review of issue 8: an invalid case is told it was not routed by the flag its ruleset names."""

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.service import RoutingCore, RulesetRegistry
from caseroute.testing import audited_core, compile_text, ruleset_with_rules
from caseroute.v1 import routing_pb2 as pb

from .conftest import decide_request
from .in_process import invoke_for_bad_request

SG_CONCERN_RULES = (
    ruleset_with_rules(
        """\
  - id: rest
    when: true
    then: {route: {queue: by_intent}}
"""
    )
    .replace("flag: safeguarding", "flag: sg_concern")
    .replace("'safeguarding' in", "'sg_concern' in")
)


@pytest.fixture
def sg_concern_core(tmp_path: Path) -> Iterator[RoutingCore]:
    """A core whose only ruleset calls its safeguarding flag ``sg_concern``."""
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(compile_text(SG_CONCERN_RULES), EngineKind.PYTHON))
    core = audited_core(registry, tmp_path)
    yield core
    core.audit.close()


def _violations(core: RoutingCore, request: pb.DecideRequest) -> list[tuple[str, str]]:
    code, bad = invoke_for_bad_request(core, "Decide", request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    return [(v.field, v.description) for v in bad.field_violations]


def _invalid(flags: list[str]) -> pb.DecideRequest:
    request = decide_request()
    request.case.flags[:] = flags
    request.case.region = "not a region!"
    return request


def test_the_configured_safeguarding_flag_gets_the_not_routed_notice(
    sg_concern_core: RoutingCore,
) -> None:
    """An invalid case with the ruleset's own safeguarding flag is told it was not routed."""
    found = _violations(sg_concern_core, _invalid([" SG_Concern"]))
    assert found[0] == ("case.flags", SAFEGUARDING_NOTICE)
    assert len(found) == 2


def test_the_conventional_safeguarding_flag_keeps_its_notice(
    sg_concern_core: RoutingCore,
) -> None:
    """Plain `safeguarding` still gets the notice where a ruleset names another flag."""
    found = _violations(sg_concern_core, _invalid(["safeguarding"]))
    assert found == [("case.flags", SAFEGUARDING_NOTICE), found[1]]
    assert found[1][0] == "case.region"


def test_a_batch_case_with_the_configured_flag_gets_the_notice(
    sg_concern_core: RoutingCore,
) -> None:
    """DecideBatch puts the notice at the flagged case's own flags path."""
    single = _invalid(["sg_concern"])
    batch = pb.DecideBatchRequest(
        request_id="b1", cases=[single.case], roster=single.roster, now=single.now
    )
    code, bad = invoke_for_bad_request(sg_concern_core, "DecideBatch", batch)
    first = bad.field_violations[0]
    assert (code, first.field, first.description) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "cases[0].flags",
        SAFEGUARDING_NOTICE,
    )
