"""Over real gRPC, a refused attribute value is named by its path, never quoted back."""

import grpc
import pytest

from caseroute.grpc_api.server import RunningServer

from .conftest import decide_request, served_refusal

MEMBER_ID = 4111111111111111
"""A 16-digit identifier sent as a number: past the ±1e15 a number may hold."""


@pytest.mark.parametrize("where", ["case", "agent"])
def test_an_out_of_range_number_attribute_is_refused_without_its_digits(
    python_server: RunningServer, where: str
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
    code, violations, details = served_refusal(python_server.port, request)
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
