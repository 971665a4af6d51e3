"""A call refused before conversion (batch size, deadline) leaves a first-sight roster unread."""

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from caseroute.domain.fingerprint import roster_sha256
from caseroute.domain.limits import DEFAULT_LIMITS
from caseroute.grpc_api.servicer import RoutingServicer, request_deserializer
from caseroute.service import RulesetRegistry
from caseroute.testing import NOW, audited_core, make_agent, make_case, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from tests.grpc_api.fake_context import FakeContext

CASE = convert.case_to_proto(make_case())
STAMP = convert.datetime_to_timestamp(NOW)


@pytest.fixture
def servicer(registry: RulesetRegistry, tmp_path: Path) -> Iterator[RoutingServicer]:
    """A servicer with its own decision log and an empty roster cache."""
    made = RoutingServicer(audited_core(registry, tmp_path))
    yield made
    made._core.audit.close()


def _roster(prefix: str) -> pb.Roster:
    return convert.roster_to_proto(make_roster(*[make_agent(f"{prefix}{i}") for i in range(3)]))


def _batch(
    servicer: RoutingServicer, cases: int, remaining: float | None = None
) -> tuple[Any, ...]:
    """A DecideBatch sending a new roster; the call's code and the cache's counts after it."""
    request = pb.DecideBatchRequest(
        request_id="b1", cases=[CASE] * cases, now=STAMP, roster=_roster("b")
    )
    for i, case in enumerate(request.cases):  # a batch names each case once
        case.case_id = f"{CASE.case_id}-{i}"
    data = request.SerializeToString(deterministic=True)
    context: Any = FakeContext(remaining)
    servicer.DecideBatch(request_deserializer(pb.DecideBatchRequest)(data), context)
    return context.code, *_counts(servicer)


def _counts(servicer: RoutingServicer) -> tuple[int, ...]:
    cache = servicer.roster_cache
    return cache.misses, len(cache), cache.agent_misses


def _by_hash(servicer: RoutingServicer, prefix: str) -> grpc.StatusCode | None:
    """A Decide naming that roster only by its roster_sha256: OK when cached."""
    sha = roster_sha256(convert.roster_from_proto(_roster(prefix), limits=DEFAULT_LIMITS))
    data = pb.DecideRequest(
        request_id="d2", case=CASE, now=STAMP, roster_sha256=sha
    ).SerializeToString(deterministic=True)
    context: Any = FakeContext()
    servicer.Decide(request_deserializer(pb.DecideRequest)(data), context)
    code: grpc.StatusCode | None = context.code
    return code


@pytest.mark.parametrize(
    ("cases", "remaining"),
    [(0, None), (DEFAULT_LIMITS.max_batch_cases + 1, None), (1, 0.0)],
    ids=["no case", "too many cases", "deadline passed"],
)
def test_a_refused_batch_caches_nothing(
    servicer: RoutingServicer, cases: int, remaining: float | None
) -> None:
    """A batch refused for its size or deadline: no roster read, nothing found by hash later."""
    code = (
        grpc.StatusCode.DEADLINE_EXCEEDED if remaining == 0.0 else grpc.StatusCode.INVALID_ARGUMENT
    )
    assert _batch(servicer, cases, remaining) == (code, 0, 0, 0)
    assert _by_hash(servicer, "b") == grpc.StatusCode.FAILED_PRECONDITION


def test_a_batch_over_the_pair_limit_caches_nothing(
    registry: RulesetRegistry, tmp_path: Path
) -> None:
    """Cases x agents over max_batch_pairs (2 x 3 > 5): refused with the roster unread."""
    tight = RoutingServicer(
        audited_core(registry, tmp_path),
        limits=dataclasses.replace(DEFAULT_LIMITS, max_batch_pairs=5),
    )
    try:
        assert _batch(tight, 2) == (grpc.StatusCode.INVALID_ARGUMENT, 0, 0, 0)
        assert _batch(tight, 1) == (None, 1, 1, 3)  # 1 x 3 pairs: read and cached
    finally:
        tight._core.audit.close()


def test_a_decide_past_its_deadline_caches_nothing(servicer: RoutingServicer) -> None:
    """A Decide whose deadline passed in the queue is refused without converting its roster."""
    data = pb.DecideRequest(
        request_id="d1", case=CASE, now=STAMP, roster=_roster("d")
    ).SerializeToString(deterministic=True)
    context: Any = FakeContext(0.0)
    servicer.Decide(request_deserializer(pb.DecideRequest)(data), context)
    assert (context.code, *_counts(servicer)) == (grpc.StatusCode.DEADLINE_EXCEEDED, 0, 0, 0)
    assert _by_hash(servicer, "d") == grpc.StatusCode.FAILED_PRECONDITION


def test_a_batch_within_the_limits_is_read_from_its_bytes(
    servicer: RoutingServicer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same batch with 2 cases and time left: read from its bytes, cached, found by hash."""
    read = servicer.roster_cache.parse_sent
    calls: list[int] = []

    def counted(sent: bytes, **kw: Any) -> Any:
        calls.append(len(sent))
        return read(sent, **kw)

    monkeypatch.setattr(servicer.roster_cache, "parse_sent", counted)
    assert _batch(servicer, 2) == (None, 1, 1, 3)
    assert (len(calls), _by_hash(servicer, "b")) == (1, None)
