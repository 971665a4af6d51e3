"""The client sends a roster the server accepted as its hash, and resends it when asked."""

import threading
from typing import Any

import grpc
import pytest

from caseroute.client import (
    Client,
    FailedPreconditionError,
    InvalidRequestError,
    NotFoundError,
)
from caseroute.client.errors import error_from_rpc
from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.errors import FieldViolation
from caseroute.domain.fingerprint import roster_sha256, roster_to_dict
from caseroute.grpc_api.roster_cache import RosterCache
from caseroute.grpc_api.server import RunningServer
from caseroute.testing import NOW, make_agent, make_case, make_roster
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from caseroute.wire import convert

from .conftest import NOW_TEXT, agent_dict, case_dict, roster_dict


def _cache(server: RunningServer) -> RosterCache:
    cache = server.roster_cache
    assert cache is not None
    return cache


class Recording:
    """A client whose sent requests are kept (a wrapper around its stub's methods)."""

    def __init__(self, client: Client) -> None:
        self.sent: list[Any] = []
        stub: Any = client._routing
        for name in ("Decide", "DecideBatch"):
            setattr(stub, name, self._wrap(getattr(stub, name)))

    def _wrap(self, method: Any) -> Any:
        def call(request: Any, **kwargs: Any) -> Any:
            copy = type(request)()
            copy.CopyFrom(request)
            self.sent.append(copy)
            return method(request, **kwargs)

        return call

    def shapes(self) -> list[tuple[bool, str]]:
        """(roster sent, roster_sha256 sent) of each request, in order."""
        return [(r.HasField("roster"), r.roster_sha256) for r in self.sent]


@pytest.fixture
def recorded(client: Client) -> tuple[Client, Recording]:
    """The module server's client, recording what it sends."""
    return client, Recording(client)


def test_the_second_call_sends_only_the_hash(
    recorded: tuple[Client, Recording], server: RunningServer
) -> None:
    """First call: roster and its hash; then the hash alone, decided the same way."""
    client, log = recorded
    roster = parse_roster(roster_dict(agent_dict("h1")))
    sha = roster_sha256(roster)
    first = client.decide(case_dict("H-1"), roster, now=NOW_TEXT)
    hits = _cache(server).hits
    second = client.decide(case_dict("H-2"), roster, now=NOW_TEXT)
    assert log.shapes() == [(True, sha), (False, sha)]
    assert (first.decision.agent_id, second.decision.agent_id) == ("h1", "h1")
    assert second.decision.explanation.input_sha256 != first.decision.explanation.input_sha256
    assert _cache(server).hits == hits + 1


def test_a_retry_by_hash_gets_the_stored_decision(recorded: tuple[Client, Recording]) -> None:
    """The derived request id does not depend on how the roster went: replayed, same id."""
    client, log = recorded
    roster = parse_roster(roster_dict(agent_dict("r1")))
    first = client.decide(case_dict("R-1"), roster, now=NOW_TEXT)
    again = client.decide(case_dict("R-1"), roster, now=NOW_TEXT)
    assert [shape[0] for shape in log.shapes()] == [True, False]
    assert (again.replayed, again.request_id, again.decision) == (
        True,
        first.request_id,
        first.decision,
    )


def test_when_the_server_lost_the_roster_the_client_resends_it(
    recorded: tuple[Client, Recording], server: RunningServer
) -> None:
    """ROSTER_NOT_CACHED never reaches the caller: the call goes again with the roster."""
    client, log = recorded
    roster = parse_roster(roster_dict(agent_dict("e1")))
    sha = roster_sha256(roster)
    client.decide(case_dict("E-1"), roster, now=NOW_TEXT)
    cache = _cache(server)
    budget = (cache.max_agents, cache.max_bytes)
    # Off, the cache evicts everything and the server looks nothing up in its log (the
    # roster is there: decided with once): E-2 by hash is refused, and resent with it.
    cache.configure(max_agents=0, max_bytes=0)
    reply = client.decide(case_dict("E-2"), roster, now=NOW_TEXT)
    # On again but empty, the server loads the roster from its log: E-3 goes by hash alone.
    cache.configure(max_agents=budget[0], max_bytes=budget[1])
    third = client.decide(case_dict("E-3"), roster, now=NOW_TEXT)
    assert log.shapes() == [(True, sha), (False, sha), (True, sha), (False, sha)]
    assert (reply.decision.agent_id, third.decision.agent_id) == ("e1", "e1")


def test_a_batch_goes_by_hash_too(recorded: tuple[Client, Recording]) -> None:
    """decide_batch uses the same memory of rosters the server holds as decide."""
    client, log = recorded
    roster = parse_roster(roster_dict(agent_dict("b1"), agent_dict("b2")))
    client.decide(case_dict("B-0"), roster, now=NOW_TEXT)
    reply = client.decide_batch([case_dict("B-1"), case_dict("B-2")], roster, now=NOW_TEXT)
    assert [shape[0] for shape in log.shapes()] == [True, False]
    assert [d.agent_id for d in reply.decisions] == ["b1", "b2"]


def test_dicts_go_by_hash_as_well(recorded: tuple[Client, Recording]) -> None:
    """A roster given as a dict each time is hashed each time, and still sent by hash."""
    client, log = recorded
    data = roster_dict(agent_dict("d1"))
    client.decide(case_dict("D-1"), data, now=NOW_TEXT)
    client.decide(case_dict("D-2"), data, now=NOW_TEXT)
    assert [shape[0] for shape in log.shapes()] == [True, False]


def test_a_client_told_not_to_always_sends_the_roster(server: RunningServer) -> None:
    """roster_by_hash=False: every request carries the roster (and its hash, checked)."""
    with Client(f"127.0.0.1:{server.port}", roster_by_hash=False) as client:
        log = Recording(client)
        roster = parse_roster(roster_dict(agent_dict("n1")))
        client.decide(case_dict("N-1"), roster, now=NOW_TEXT)
        client.decide(case_dict("N-2"), roster, now=NOW_TEXT)
    assert [shape[0] for shape in log.shapes()] == [True, True]


def test_the_same_roster_object_is_hashed_once(
    recorded: tuple[Client, Recording], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Roster passed again is not hashed again (the client keeps its hash)."""
    client, _ = recorded
    roster = parse_roster(roster_dict(agent_dict("o1")))
    client.decide(case_dict("O-1"), roster, now=NOW_TEXT)
    calls: list[object] = []

    def counting(roster: object) -> str:
        calls.append(roster)
        return "x" * 64

    monkeypatch.setattr("caseroute.client.calls.roster_sha256", counting)
    client.decide(case_dict("O-2"), roster, now=NOW_TEXT)
    assert calls == []


def test_the_hash_memory_is_bounded(recorded: tuple[Client, Recording]) -> None:
    """Past HASHED_ROSTERS objects and KNOWN_ROSTERS hashes, the oldest are forgotten."""
    client, _ = recorded
    rosters = [parse_roster(roster_dict(agent_dict(f"m{i}"))) for i in range(9)]
    for roster in rosters:
        client._roster_hash(roster)
    for i in range(65):
        client._server_holds(f"{i:064x}", held=True)
    assert (len(client._hashed), len(client._known)) == (8, 64)
    assert "0" * 64 not in client._known
    for i in range(65):  # refusals counted per hash (MISSES_BEFORE_FULL): bounded alike
        client._server_holds(f"{i:064x}", held=False)
    assert (len(client._misses), "0" * 64 in client._misses) == (64, False)


def _refusing_hash_only(client: Client, error: Exception) -> Any:
    """A ``Client._call`` that raises ``error`` for a request without a roster."""
    real = client._call

    def call(method: Any, request: Any, timeout: Any) -> Any:
        if not request.HasField("roster"):
            raise error
        return real(method, request, timeout)

    return call


def test_a_server_that_does_not_know_roster_sha256_gets_rosters_again(
    recorded: tuple[Client, Recording], monkeypatch: pytest.MonkeyPatch
) -> None:
    """INVALID_ARGUMENT at `roster` for a hash-only request: resend, and stop sending hashes."""
    client, log = recorded
    roster = parse_roster(roster_dict(agent_dict("v1")))
    client.decide(case_dict("V-1"), roster, now=NOW_TEXT)
    old_server = InvalidRequestError(
        grpc.StatusCode.INVALID_ARGUMENT,
        "invalid request: 1 problem(s)",
        (FieldViolation("roster", "is required (it may have no agents)"),),
    )
    monkeypatch.setattr(client, "_call", _refusing_hash_only(client, old_server))
    client.decide(case_dict("V-2"), roster, now=NOW_TEXT)
    client.decide(case_dict("V-3"), roster, now=NOW_TEXT)
    assert [shape[0] for shape in log.shapes()] == [True, True, True]


def test_a_failed_precondition_of_another_kind_reaches_the_caller(
    recorded: tuple[Client, Recording], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the ErrorInfo reason ROSTER_NOT_CACHED asks for a resend."""
    client, log = recorded
    roster = parse_roster(roster_dict(agent_dict("f1")))
    client.decide(case_dict("F-1"), roster, now=NOW_TEXT)
    other = FailedPreconditionError(
        grpc.StatusCode.FAILED_PRECONDITION, "something else", reason="OTHER"
    )
    monkeypatch.setattr(client, "_call", _refusing_hash_only(client, other))
    with pytest.raises(FailedPreconditionError) as caught:
        client.decide(case_dict("F-2"), roster, now=NOW_TEXT)
    assert (caught.value.reason, [shape[0] for shape in log.shapes()]) == ("OTHER", [True])


def test_other_refusals_of_a_hash_only_request_reach_the_caller(
    recorded: tuple[Client, Recording],
) -> None:
    """An unknown ruleset with the hash: the server's NOT_FOUND, and no resend."""
    client, log = recorded
    roster = parse_roster(roster_dict(agent_dict("x1")))
    client.decide(case_dict("X-1"), roster, now=NOW_TEXT)
    with pytest.raises(NotFoundError):
        client.decide(case_dict("X-2"), roster, now=NOW_TEXT, ruleset="nope")
    assert [shape[0] for shape in log.shapes()] == [True, False]


def test_the_server_s_reason_is_read_from_error_info(server: RunningServer) -> None:
    """error_from_rpc keeps the google.rpc.ErrorInfo reason: ROSTER_NOT_CACHED here."""
    request = pb.DecideRequest(request_id="u-1", roster_sha256="0" * 64)
    request.case.CopyFrom(convert.case_to_proto(parse_case(case_dict("U-1"))))
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Decide(request)
    error = error_from_rpc(caught.value)
    assert (type(error), error.reason) == (FailedPreconditionError, "ROSTER_NOT_CACHED")


def test_a_roster_object_the_parser_normalises_goes_by_the_hash_the_server_computes(
    recorded: tuple[Client, Recording],
) -> None:
    """An upper-case language tag and jurisdiction: the hash is taken over the read roster.

    Taken over the object as given, it would differ from the server's (which reads the tag
    lower-cased), and the server refuses a roster whose hash does not match (review R29c F2).
    """
    client, recording = recorded
    agent = make_agent("a1", languages=frozenset({"EN-us"}))
    roster = make_roster(agent)
    for n in range(2):
        client.decide(make_case(case_id=f"C-norm-{n}"), roster, now=NOW)
    expected = roster_sha256(parse_roster(roster_to_dict(roster)))
    assert recording.shapes()[-2:] == [(True, expected), (False, expected)]


def test_a_server_that_keeps_refusing_a_roster_by_hash_gets_it_in_full_for_a_while(
    recorded: tuple[Client, Recording], server: RunningServer
) -> None:
    """Cache off (`--roster-cache-agents 0`): by hash each call was refused, then resent.

    Every call paid two round trips (and a refusal line in the server's log). After
    MISSES_BEFORE_FULL refusals of a roster the server had accepted in full, the client sends
    it in full for FULL_BETWEEN_TRIES calls, then tries its hash once more; a call by hash that
    passes clears the count.
    """
    from caseroute.client.calls import FULL_BETWEEN_TRIES, MISSES_BEFORE_FULL

    client, log = recorded
    roster = parse_roster(roster_dict(agent_dict("k1")))
    sha = roster_sha256(roster)
    cache = _cache(server)
    budget = (cache.max_agents, cache.max_bytes)
    cache.configure(max_agents=0, max_bytes=0)
    try:
        calls = 1 + MISSES_BEFORE_FULL + FULL_BETWEEN_TRIES + 1
        for n in range(calls):
            reply = client.decide(case_dict(f"K-{n}"), roster, now=NOW_TEXT)
            assert reply.decision.agent_id == "k1"
    finally:
        cache.configure(max_agents=budget[0], max_bytes=budget[1])
    full, by_hash = (True, sha), (False, sha)
    assert log.shapes() == [
        full,  # the first call
        *[by_hash, full] * MISSES_BEFORE_FULL,  # refused by hash, resent in full
        *[full] * FULL_BETWEEN_TRIES,  # in full, no refusal
        by_hash,  # tried again: still refused, resent
        full,
    ]
    # With the cache on again: the owed calls in full, then by hash, which passes and clears
    # the count; one refusal after that costs one resend, not another FULL_BETWEEN_TRIES.
    before = len(log.sent)
    for n in range(FULL_BETWEEN_TRIES + 1):
        client.decide(case_dict(f"K-on-{n}"), roster, now=NOW_TEXT)
    assert log.shapes()[before:] == [full] * FULL_BETWEEN_TRIES + [by_hash]
    cache.configure(max_agents=0, max_bytes=0)
    try:
        client.decide(case_dict("K-off"), roster, now=NOW_TEXT)
    finally:
        cache.configure(max_agents=budget[0], max_bytes=budget[1])
    client.decide(case_dict("K-back"), roster, now=NOW_TEXT)
    assert log.shapes()[before + FULL_BETWEEN_TRIES + 1 :] == [by_hash, full, by_hash]


def test_while_the_try_by_hash_after_the_calls_in_full_is_in_flight_others_go_in_full(
    recorded: tuple[Client, Recording], server: RunningServer
) -> None:
    """One try by hash after FULL_BETWEEN_TRIES calls in full, not one per thread in flight.

    From many threads, every call that found the count at 0 went by hash and was refused
    (two round trips each), so under load the pause barely held.
    """
    from caseroute.client.calls import FULL_BETWEEN_TRIES, MISSES_BEFORE_FULL

    client, log = recorded
    roster = parse_roster(roster_dict(agent_dict("p1")))
    sha = roster_sha256(roster)
    cache = _cache(server)
    budget = (cache.max_agents, cache.max_bytes)
    in_flight, release = threading.Event(), threading.Event()
    stub: Any = client._routing
    decide = stub.Decide

    def held_first_by_hash(request: Any, **kwargs: Any) -> Any:
        if not request.HasField("roster") and not in_flight.is_set():
            in_flight.set()
            assert release.wait(timeout=30)
        return decide(request, **kwargs)

    cache.configure(max_agents=0, max_bytes=0)
    try:
        for n in range(1 + MISSES_BEFORE_FULL + FULL_BETWEEN_TRIES):
            client.decide(case_dict(f"P-{n}"), roster, now=NOW_TEXT)
        stub.Decide = held_first_by_hash
        before = len(log.sent)
        probe = threading.Thread(
            target=client.decide, args=(case_dict("P-probe"), roster), kwargs={"now": NOW_TEXT}
        )
        probe.start()
        assert in_flight.wait(timeout=30)
        client.decide(case_dict("P-meanwhile"), roster, now=NOW_TEXT)
        meanwhile = log.shapes()[before:]
        release.set()
        probe.join(timeout=30)
    finally:
        release.set()
        cache.configure(max_agents=budget[0], max_bytes=budget[1])
    assert [(True, sha)] == meanwhile  # the call meanwhile: in full, once
    assert [(False, sha), (True, sha)] == log.shapes()[before + 1 :]  # the try: refused, resent


def test_calls_by_hash_refused_together_are_one_miss(
    recorded: tuple[Client, Recording], server: RunningServer
) -> None:
    """A restart with two calls in flight costs each one resend, not FULL_BETWEEN_TRIES calls.

    Each refusal counted as a miss, so two threads refused together after one eviction made
    the client send the roster in full for the next FULL_BETWEEN_TRIES calls.
    """
    client, log = recorded
    roster = parse_roster(roster_dict(agent_dict("t1")))
    sha = roster_sha256(roster)
    client.decide(case_dict("T-0"), roster, now=NOW_TEXT)
    cache = _cache(server)
    budget = (cache.max_agents, cache.max_bytes)
    by_hash, in_full = threading.Barrier(2, timeout=30), threading.Barrier(2, timeout=30)
    stub: Any = client._routing
    decide = stub.Decide

    def together(request: Any, **kwargs: Any) -> Any:
        # Both sent by hash before either is refused; both refused before either resends.
        (in_full if request.HasField("roster") else by_hash).wait()
        return decide(request, **kwargs)

    stub.Decide = together
    cache.configure(max_agents=0, max_bytes=0)
    try:
        threads = [
            threading.Thread(
                target=client.decide, args=(case_dict(f"T-{n}"), roster), kwargs={"now": NOW_TEXT}
            )
            for n in (1, 2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        stub.Decide = decide
        cache.configure(max_agents=budget[0], max_bytes=budget[1])
    assert [(True, sha), (False, sha), (False, sha), (True, sha), (True, sha)] == log.shapes()
    client.decide(case_dict("T-3"), roster, now=NOW_TEXT)
    assert (False, sha) == log.shapes()[-1]
