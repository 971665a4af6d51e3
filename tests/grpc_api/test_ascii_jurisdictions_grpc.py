"""Over real gRPC, a jurisdiction that only upper-cases into ASCII is refused (review L4)."""

from collections.abc import Iterator

import grpc
import pytest

from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import RunningServer

from .conftest import decide_request, served_refusal, serving_reference


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An in-process server on a free port with the reference ruleset."""
    with serving_reference(tmp_path_factory.mktemp("audit"), engine=EngineKind.PYTHON) as server:
        yield server


@pytest.mark.parametrize("where", ["licence", "case"])
def test_a_long_s_jurisdiction_is_invalid_argument_not_texas(
    running: RunningServer, where: str
) -> None:
    """'us-tx' with a long s as a licence's or the case's jurisdiction: INVALID_ARGUMENT there."""
    request = decide_request(f"long-s-{where}")
    if where == "licence":
        request.roster.agents[0].licences[0].jurisdiction = "u\u017f-tx"
        path = "roster.agents[0].licences[0].jurisdiction"
    else:
        request.case.patient_location = "u\u017f-tx"
        path = "case.patient_location"
    code, violations, _ = served_refusal(running.port, request)
    assert (code, [field for field, _ in violations]) == (grpc.StatusCode.INVALID_ARGUMENT, [path])
    assert "(U+017F), which is not ASCII" in violations[0][1]
