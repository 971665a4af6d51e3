"""A roster loaded from the decision log is cached exactly as the same roster sent would be.

``RosterLog`` builds the cache entry of a roster sent by ``roster_sha256`` alone straight from
the domain roster its stored JSON parses to (``RosterCache.keep_loaded``), not through a
Roster message and the cache's conversion of it. What a caller can observe must not depend on
which way the roster came: the roster's value, its digests (so ``roster_sha256`` and every
``input_sha256``), its index, and so each decision and explanation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from caseroute.domain.errors import RequestError
from caseroute.domain.fingerprint import roster_json
from caseroute.domain.limits import DEFAULT_LIMITS, InputLimits
from caseroute.domain.roster import Capacity, Role
from caseroute.engine.roster_index import RosterIndex, index_for
from caseroute.grpc_api.roster_cache import RosterCache
from caseroute.grpc_api.roster_log import RosterLog
from caseroute.grpc_api.servicer import RoutingServicer
from caseroute.service import RulesetRegistry
from caseroute.testing import NOW, audited_core, make_agent, make_case, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.wire import convert
from caseroute.wire.convert import KnownRoster
from tests.wire.test_fast_known_agents import valid_agent_msgs

from .fake_context import FakeContext


class _Stored:
    """A StoredRosters holding one snapshot's text, as the decision log returns it."""

    def __init__(self, text: str) -> None:
        self.text = text

    def roster_text(
        self, sha256: str, *, timeout_s: float, max_agents: int, max_bytes: int
    ) -> str | None:
        del sha256, timeout_s, max_agents, max_bytes
        return self.text


def _sent_and_loaded(msg: pb.Roster, limits: InputLimits) -> tuple[KnownRoster, KnownRoster]:
    """The roster as a cache parses it sent, and as another loads it from its stored text."""
    sent = RosterCache().parse(msg, limits=limits)
    cache = RosterCache()
    stored = _Stored(roster_json(sent.roster))  # the text the log keeps (audit.roster_blob)
    loaded = RosterLog(stored, cache, max_bytes=1 << 24).load(sent.fingerprint.sha256, limits, None)
    assert loaded is not None
    assert cache.find(sent.fingerprint.sha256, limits=limits) is loaded  # cached, by its hash
    return sent, loaded


def _index_content(index: RosterIndex) -> tuple[Any, ...]:
    """What an index answers with (not its lock or its memo of per-need results)."""
    return (
        index.agents,
        index.everyone,
        index.by_status,
        index.by_role,
        index.has_capacity,
        index.by_territory,
        index.by_language,
        index.skill_at_least,
        index.licensed,
        index.repeated,
    )


def _assert_same_entry(sent: KnownRoster, loaded: KnownRoster) -> None:
    assert sent.roster == loaded.roster
    assert sent.fingerprint == loaded.fingerprint  # sha256, header, agent digests, input tail
    assert _index_content(index_for(sent.roster)) == _index_content(index_for(loaded.roster))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_agent_msgs(), min_size=0, max_size=4))
def test_a_loaded_roster_equals_the_same_roster_sent_for_any_valid_agents(
    agents: list[pb.Agent],
) -> None:
    """Every field kind (attributes, instants, licences, languages): value, digests, index."""
    msg = pb.Roster(snapshot_id="snap-1", agents=agents)
    msg.taken_at.CopyFrom(convert.datetime_to_timestamp(NOW))
    try:
        RosterCache().parse(msg, limits=DEFAULT_LIMITS)
    except RequestError:
        reject()  # ids repeated (ignoring case): no roster either way
    sent, loaded = _sent_and_loaded(msg, DEFAULT_LIMITS)
    _assert_same_entry(sent, loaded)


def test_a_loaded_roster_equals_the_same_roster_sent_at_the_benchmark_s_size() -> None:
    """1,000 agents of the served benchmark's kind: value, digests and index."""
    agents = [make_agent(f"agent-{i:04d}", seniority=i % 40) for i in range(1000)]
    sent, loaded = _sent_and_loaded(convert.roster_to_proto(make_roster(*agents)), DEFAULT_LIMITS)
    _assert_same_entry(sent, loaded)


ROSTER = make_roster(
    make_agent("a1", seniority=3),
    make_agent("a2", capacity=Capacity(5, 3), attributes={"shift": "late", "score": 0.5}),
    make_agent("s1", role=Role.SENIOR),
)


@pytest.fixture
def cores(registry: RulesetRegistry, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """Two cores with decision logs of their own (the engine of record's registry)."""
    one, two = audited_core(registry, tmp_path / "one"), audited_core(registry, tmp_path / "two")
    yield one, two
    one.audit.close()
    two.audit.close()


def _request(request_id: str, *, by_hash: str | None = None) -> pb.DecideRequest:
    request = pb.DecideRequest(
        request_id=request_id,
        case=convert.case_to_proto(make_case()),
        now=convert.datetime_to_timestamp(NOW),
        explanation_level=pb.EXPLANATION_LEVEL_FULL,
    )
    if by_hash is None:
        request.roster.CopyFrom(convert.roster_to_proto(ROSTER))
    else:
        request.roster_sha256 = by_hash
    return request


def test_a_decide_by_hash_loaded_from_the_log_replies_as_the_roster_sent(
    cores: tuple[Any, Any],
) -> None:
    """Same decision, explanation (agent verdicts, ranking) and input hash either way."""
    one, two = cores
    context: Any = FakeContext()
    RoutingServicer(one).Decide(_request("store"), context)  # its snapshot now stored
    sha = RosterCache().parse(convert.roster_to_proto(ROSTER)).fingerprint.sha256
    cache = RosterCache()
    loader = RosterLog(one.audit, cache, max_bytes=1 << 24)
    by_hash = RoutingServicer(one, roster_cache=cache, roster_log=loader).Decide(
        _request("same", by_hash=sha), context
    )
    assert loader.loaded == 1
    # The same request with the roster, on a core whose log has never seen it: nothing replayed.
    sent = RoutingServicer(two).Decide(_request("same"), context)
    assert not by_hash.replayed
    assert not sent.replayed
    assert by_hash.decision.explanation.input_sha256 != ""
    assert sent == by_hash
