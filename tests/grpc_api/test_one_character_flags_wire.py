"""On the wire, a case whose flags are one letter each is INVALID_ARGUMENT, never routed."""

import grpc

from caseroute.service import RoutingCore

from .conftest import decide_request
from .in_process import invoke_for_bad_request


def test_letters_of_safeguarding_are_invalid_argument_at_each_flag(core: RoutingCore) -> None:
    """``"flags": ["s", "a", ...]`` names case.flags[i] in BadRequest; nothing is recorded."""
    request = decide_request()
    request.case.flags[:] = list("safe")
    code, bad = invoke_for_bad_request(core, "Decide", request)
    fields = [v.field for v in bad.field_violations]
    assert (code, fields[:2]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ["case.flags[0]", "case.flags[1]"],
    )
    assert bad.field_violations[0].description.startswith("'s' is a one-character flag; ")
    assert list(core.audit.records()) == []
