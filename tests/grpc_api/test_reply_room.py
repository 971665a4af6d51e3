"""A recorded decision can always be answered again, and an ended call records nothing (R31c).

1. A first reply was measured without ``replayed``, which proto3 leaves out when false; its
   retry carries ``replayed = true`` (2 bytes more), so a reply that just fitted was recorded,
   sent, and then refused on every retry.
2. A call whose deadline passed while it was being decided was still recorded, though the
   caller had already been told DEADLINE_EXCEEDED.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.service import RoutingCore, RulesetRegistry
from caseroute.testing import audited_core
from caseroute.v1 import routing_pb2 as pb

from .conftest import decide_request
from .fake_context import FakeContext


def _decide(core: RoutingCore, limit: int, request: Any, context: Any = None) -> Any:
    context = context or FakeContext()
    reply = RoutingServicer(core, max_reply_bytes=limit).Decide(request, context)
    return reply, context


def _as_context(context: FakeContext) -> Any:
    """``context`` where a servicer method takes a grpc.ServicerContext."""
    return context


def _reply_size(registry: RulesetRegistry, directory: Path) -> int:
    """The size of the first reply to ``decide_request('room-1')``, replayed unset."""
    core = audited_core(registry, directory)
    try:
        reply, context = _decide(core, 4 * 1024 * 1024, decide_request("room-1"))
    finally:
        core.audit.close()
    assert (context.code, reply.replayed) == (None, False)
    return int(reply.ByteSize())


def test_a_reply_that_fits_only_without_the_replayed_flag_is_refused_first(
    registry: RulesetRegistry, tmp_path: Path
) -> None:
    """Limit = size + 1: refused before recording (before: sent, then no retry could fit)."""
    size = _reply_size(registry, tmp_path / "measure")
    core = audited_core(registry, tmp_path / "tight")
    try:
        reply, context = _decide(core, size + 1, decide_request("room-1"))
        assert context.code is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert context.details.startswith(f"the reply would be {size + 2} bytes, over")
        assert (reply.ByteSize(), core.audit.by_request("room-1")) == (0, [])
    finally:
        core.audit.close()


def test_a_reply_with_room_for_the_flag_is_answered_and_so_is_its_retry(
    registry: RulesetRegistry, tmp_path: Path
) -> None:
    """Limit = size + 2: the first reply and its retry (replayed) both fit."""
    size = _reply_size(registry, tmp_path / "measure")
    core = audited_core(registry, tmp_path / "room")
    try:
        first, context = _decide(core, size + 2, decide_request("room-1"))
        assert (context.code, first.ByteSize()) == (None, size)
        again, context = _decide(core, size + 2, decide_request("room-1"))
        assert (context.code, again.replayed, again.ByteSize()) == (None, True, size + 2)
        assert again.decision == first.decision
    finally:
        core.audit.close()


class _EndsWhileDeciding:
    """``core``, ending ``context`` (deadline passed, or cancelled) as the core starts deciding.

    So the call is alive while its request is decoded and its roster read, and has ended by
    the time the core asks the transport whether the reply can be delivered.
    """

    def __init__(self, core: RoutingCore, context: FakeContext, how: str) -> None:
        self._core, self._context, self._how = core, context, how

    def __getattr__(self, name: str) -> Any:
        return getattr(self._core, name)

    def decide(self, command: Any, before_record: Any = None) -> Any:
        if self._how == "deadline":
            self._context.remaining = 0.0
        else:
            self._context.active = False
        return self._core.decide(command, before_record)


@pytest.mark.parametrize(
    ("how", "code", "details"),
    [
        (
            "deadline",
            grpc.StatusCode.DEADLINE_EXCEEDED,
            (
                "the call's deadline passed before its decisions were recorded: nothing was "
                "recorded; retry with the same request_id and a longer deadline"
            ),
        ),
        (
            "cancelled",
            grpc.StatusCode.CANCELLED,
            (
                "the call was cancelled before its decisions were recorded: nothing was "
                "recorded; retry with the same request_id"
            ),
        ),
    ],
)
def test_a_call_that_ended_before_recording_records_nothing(
    core: RoutingCore, how: str, code: grpc.StatusCode, details: str
) -> None:
    """DEADLINE_EXCEEDED or CANCELLED, nothing recorded; a live retry is decided afresh."""
    context = FakeContext(30.0)
    ending: Any = _EndsWhileDeciding(core, context, how)
    reply = RoutingServicer(ending).Decide(decide_request("end-1"), _as_context(context))
    assert (context.code, context.details) == (code, details)
    assert (reply.ByteSize(), core.audit.by_request("end-1")) == (0, [])
    retry = FakeContext(30.0)
    again = RoutingServicer(core).Decide(decide_request("end-1"), _as_context(retry))
    assert (retry.code, again.replayed, again.decision.outcome) == (
        None,
        False,
        pb.OUTCOME_ASSIGN,
    )
    assert len(core.audit.by_request("end-1")) == 1


def test_a_retry_whose_call_ended_says_its_decisions_were_recorded(core: RoutingCore) -> None:
    """R31d 9: an ended retry said "nothing was recorded" of decisions stored by the first call."""
    first = FakeContext(30.0)
    RoutingServicer(core).Decide(decide_request("end-2"), _as_context(first))
    assert first.code is None
    context = FakeContext(30.0)
    ending: Any = _EndsWhileDeciding(core, context, "deadline")
    RoutingServicer(ending).Decide(decide_request("end-2"), _as_context(context))
    expected = (
        "the call's deadline passed before its decisions were recorded: its decisions were "
        "recorded by an earlier call; retry with the same request_id and a longer deadline"
    )
    assert (context.code, context.details) == (grpc.StatusCode.DEADLINE_EXCEEDED, expected)
    assert len(core.audit.by_request("end-2")) == 1
