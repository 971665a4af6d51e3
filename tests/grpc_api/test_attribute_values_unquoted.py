"""Over real gRPC, a refused attribute value is named by its path, never quoted back."""

from collections.abc import Iterator

import grpc
import pytest

from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import RunningServer

from .conftest import decide_request, served_refusal, serving_reference

MEMBER_ID = 4111111111111111
"""A 16-digit identifier sent as a number: past the ±1e15 a number may hold."""


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An in-process server on a free port with the reference ruleset."""
    with serving_reference(tmp_path_factory.mktemp("audit"), engine=EngineKind.PYTHON) as server:
        yield server


@pytest.mark.parametrize("where", ["case", "agent"])
def test_an_out_of_range_number_attribute_is_refused_without_its_digits(
    running: RunningServer, where: str
) -> None:
    """A masked member_id past ±1e15: INVALID_ARGUMENT at its path; its digits nowhere in it.

    The status message and BadRequest go to the caller's, and proxies', logs; a text value
    is withheld for that reason (R31b F1), and a number is no less patient data.
    """
    request = decide_request(f"member-{where}")
    if where == "case":
        request.case.attributes["member_id"].number_value = MEMBER_ID
        path = "case.attributes.member_id"
    else:
        request.roster.agents[0].attributes["badge"].number_value = MEMBER_ID
        path = "roster.agents[0].attributes.badge"
    code, violations, details = served_refusal(running.port, request)
    expected = (
        "must be a number within ±1e+15 (or a string or boolean), got one beyond that; its "
        "value is not quoted (attribute values may be patient data): send an identifier as "
        "a string"
    )
    summary = (
        f"invalid request: 1 problem(s); first: {path}: {expected} (every problem is in the "
        "google.rpc.BadRequest details)"
    )
    assert (grpc.StatusCode.INVALID_ARGUMENT, [(path, expected)], summary) == (
        code,
        violations,
        details,
    )
