"""Retries on UNAVAILABLE: the channel resends the same request, so the same request_id."""

from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from caseroute.client import Client, UnavailableError
from caseroute.grpc_api.server import ROUTING_SERVICE, add_service
from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.service import RoutingCore, RulesetRegistry
from caseroute.testing import NOW, audited_core

from .conftest import agent_dict, case_dict, roster_dict


class Flaky(grpc.ServerInterceptor):
    """Answers UNAVAILABLE to the first attempts, before or after the real servicer ran.

    Attributes:
        seen: The request_id of every attempt that reached the server, in order.
    """

    def __init__(self, fail_before: int = 0, fail_after: int = 0) -> None:
        """Fail ``fail_before`` attempts unserved, then ``fail_after`` served ones."""
        self.fail_before = fail_before
        self.fail_after = fail_after
        self.seen: list[str] = []

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        """The handler, wrapped to fail the first attempts."""
        handler = continuation(handler_call_details)
        inner = handler.unary_unary

        def flaky(request: Any, context: grpc.ServicerContext) -> Any:
            self.seen.append(request.request_id)
            attempt = len(self.seen)
            if attempt <= self.fail_before:
                context.abort(grpc.StatusCode.UNAVAILABLE, "not now")
            reply = inner(request, context)
            if attempt <= self.fail_before + self.fail_after:
                context.abort(grpc.StatusCode.UNAVAILABLE, "the reply was lost")
            return reply

        return grpc.unary_unary_rpc_method_handler(
            flaky,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _serve(core: RoutingCore, flaky: Flaky) -> tuple[grpc.Server, int]:
    """A server of the real RoutingServicer behind ``flaky``, on a free port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=[flaky])
    add_service(server, ROUTING_SERVICE, RoutingServicer(core))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


@pytest.fixture
def core(registry: RulesetRegistry, tmp_path: Path) -> Iterator[RoutingCore]:
    """A core recording to a fresh decision log."""
    opened = audited_core(registry, tmp_path)
    yield opened
    opened.audit.close()


def test_an_unavailable_attempt_is_retried_with_the_same_request_id(core: RoutingCore) -> None:
    """First attempt UNAVAILABLE before deciding: the retry, same request_id, decides."""
    flaky = Flaky(fail_before=1)
    server, port = _serve(core, flaky)
    try:
        with Client(f"127.0.0.1:{port}") as client:
            reply = client.decide(case_dict("R-1"), roster_dict(), now=NOW)
    finally:
        server.stop(None)
    assert (flaky.seen, reply.replayed) == ([reply.request_id] * 2, False)
    assert [r.decision_id for r in core.audit.by_request(reply.request_id)] == [
        reply.decision.decision_id
    ]


def test_a_lost_reply_is_retried_and_returns_the_stored_decision(core: RoutingCore) -> None:
    """Decided and recorded, reply lost (UNAVAILABLE): the retry gets that decision back."""
    flaky = Flaky(fail_after=1)
    server, port = _serve(core, flaky)
    try:
        with Client(f"127.0.0.1:{port}") as client:
            reply = client.decide_batch(
                [case_dict("R-2"), case_dict("R-3")], roster_dict(), now=NOW
            )
    finally:
        server.stop(None)
    stored = core.audit.by_request(reply.request_id)
    assert (flaky.seen, reply.replayed) == ([reply.request_id] * 2, True)
    assert [r.decision_id for r in stored] == [d.decision_id for d in reply.decisions]


def test_a_request_over_grpcs_default_retry_buffer_is_still_retried(core: RoutingCore) -> None:
    """A 5,000-agent roster (380 KB) (over gRPC's 256 KiB default retry buffer) is retried too."""
    flaky = Flaky(fail_before=1)
    server, port = _serve(core, flaky)
    roster = roster_dict(*[agent_dict(f"a{i:04}") for i in range(5000)])
    try:
        with Client(f"127.0.0.1:{port}") as client:
            reply = client.decide(case_dict("R-4"), roster, now=NOW)
    finally:
        server.stop(None)
    assert (flaky.seen, reply.decision.agent_id) == ([reply.request_id] * 2, "a0000")


def test_unavailable_on_every_attempt_raises_after_max_attempts(core: RoutingCore) -> None:
    """A server that stays UNAVAILABLE gets max_attempts tries, then UnavailableError."""
    flaky = Flaky(fail_before=10)
    server, port = _serve(core, flaky)
    try:
        with Client(f"127.0.0.1:{port}", max_attempts=3) as client:
            with pytest.raises(UnavailableError) as caught:
                client.decide(case_dict("R-5"), roster_dict(), now=NOW)
            with (
                Client(f"127.0.0.1:{port}", max_attempts=1) as once,
                pytest.raises(UnavailableError),
            ):
                once.decide(case_dict("R-6"), roster_dict(), now=NOW)
    finally:
        server.stop(None)
    assert (len(flaky.seen), caught.value.details) == (4, "not now")
    assert core.audit.by_request(flaky.seen[0]) == []
