"""The call interceptors wrap each method's handler once and still see every call."""

from __future__ import annotations

from typing import Any

import grpc

from caseroute.grpc_api.auth import _CURRENT, Authenticated
from caseroute.grpc_api.rpc_calls import CallerNoteInterceptor, FinishedCall, RpcCallInterceptor

PATH = "/caseroute.v1.RoutingService/Decide"


class _Details:
    """A call's details as grpcio hands them to an interceptor."""

    method = PATH
    invocation_metadata = ()


class _Context:
    """The parts of a servicer context the interceptors read."""

    def code(self) -> None:
        return None

    def is_active(self) -> bool:
        return True

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"

    def peer_identities(self) -> None:
        return None


class _Calls:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any, str]] = []

    def call_finished(self, call: FinishedCall) -> None:
        self.seen.append((call.method, call.code.name, call.response, call.caller))


DETAILS: Any = _Details()
CONTEXT: Any = _Context()


def _handler(reply: str) -> Any:
    def behave(request: str, _context: Any) -> str:
        who = _CURRENT.get()
        return f"{reply}:{request}:{who.identity if who else ''}"

    return grpc.unary_unary_rpc_method_handler(behave)


def test_the_same_handler_is_wrapped_once_and_every_call_is_reported() -> None:
    """Two calls of one method: one wrapper (both interceptors), two reports with their replies."""
    calls = _Calls()
    outer, inner = RpcCallInterceptor([calls]), CallerNoteInterceptor()
    servicer = _handler("r")
    first_inner = inner.intercept_service(lambda _: servicer, DETAILS)
    second_inner = inner.intercept_service(lambda _: servicer, DETAILS)
    first = outer.intercept_service(lambda _: first_inner, DETAILS)
    second = outer.intercept_service(lambda _: second_inner, DETAILS)
    assert (first_inner is second_inner, first is second) == (True, True)
    assert first is not None
    assert first.unary_unary is not None
    token = _CURRENT.set(Authenticated("alice", by_token=True))
    try:
        replies = [first.unary_unary("a", CONTEXT), first.unary_unary("b", CONTEXT)]
    finally:
        _CURRENT.reset(token)
    assert replies == ["r:a:alice", "r:b:alice"]
    assert calls.seen == [
        ("Decide", "OK", "r:a:alice", "alice"),
        ("Decide", "OK", "r:b:alice", "alice"),
    ]


def test_a_new_handler_under_the_same_path_gets_a_new_wrapper() -> None:
    """A guarded service's per-call handler is wrapped anew and its own behaviour runs."""
    calls = _Calls()
    outer = RpcCallInterceptor([calls])
    first = outer.intercept_service(lambda _: _handler("one"), DETAILS)
    second = outer.intercept_service(lambda _: _handler("two"), DETAILS)
    assert second is not None
    assert first is not second
    assert second.unary_unary is not None
    assert second.unary_unary("x", CONTEXT) == "two:x:"
    assert calls.seen == [("Decide", "OK", "two:x:", "")]
