"""A replica's own refusal (its log not writable) is retried on the next replica, as promised.

scaling.md: "A call answered UNAVAILABLE (a replica killed, restarting, draining, or its log not
writable) is retried by the client's channel ... on the next ready replica." The servicer used
to answer a refusal by setting the status and returning an empty message, and grpcio then sent
that message with the status: a response with a message is committed, and gRPC never retries a
committed call. So a replica whose decision log refused writes answered UNAVAILABLE straight to
the caller, however many live replicas stood beside it (and Envoy's ``retry_on: unavailable``,
which reads the status from trailers-only responses, did not retry it either). The replicas
here are real gRPC servers in this process: one over a core whose log is closed, one over a
working core.
"""

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from caseroute.client import Client, UnavailableError
from caseroute.service import RulesetRegistry
from caseroute.testing import NOW, audited_core
from tests.client.conftest import case_dict, roster_dict

from .test_replicas_client import Replica, start_replica


@pytest.fixture
def servers() -> Iterator[list[grpc.Server]]:
    """Servers a test starts; each is stopped after it."""
    started: list[grpc.Server] = []
    yield started
    for server in started:
        server.stop(None)


def test_a_replica_whose_log_refuses_writes_is_retried_on_the_other(
    registry: RulesetRegistry, tmp_path: Path, servers: list[grpc.Server]
) -> None:
    """Every call is decided: the attempts the unwritable replica refused went to the other."""
    (tmp_path / "closed").mkdir()
    (tmp_path / "live").mkdir()
    closed = audited_core(registry, tmp_path / "closed")
    closed.audit.close()  # refuses every write (and read): UNAVAILABLE from the servicer
    live = audited_core(registry, tmp_path / "live")
    refusing, deciding = Replica(), Replica()
    addresses = [start_replica(servers, closed, refusing), start_replica(servers, live, deciding)]
    try:
        with Client(addresses, timeout=60) as client:
            replies = [client.decide(case_dict(f"W-{i}"), roster_dict(), now=NOW) for i in range(6)]
        ids = [r.request_id for r in replies]
        assert refusing.seen != []  # round_robin sent it attempts, which it refused
        assert set(refusing.seen) <= set(ids)
        assert deciding.seen == ids  # each call decided once, by the live replica
        assert [[d.decision_id for d in live.audit.by_request(i)] for i in ids] == [
            [r.decision.decision_id] for r in replies
        ]
    finally:
        live.audit.close()


def test_a_refusal_with_no_replica_left_reaches_the_caller_as_unavailable(
    registry: RulesetRegistry, tmp_path: Path, servers: list[grpc.Server]
) -> None:
    """One replica, its log closed: each attempt refused; the caller gets the fixed words."""
    closed = audited_core(registry, tmp_path)
    closed.audit.close()
    replica = Replica()
    address = start_replica(servers, closed, replica)
    with (
        Client(address, timeout=60, max_attempts=3) as client,
        pytest.raises(UnavailableError) as raised,
    ):
        client.decide(case_dict("U-1"), roster_dict(), now=NOW, request_id="U-1")
    assert raised.value.details == (
        "the decision log cannot be written; no decision was made; retry later or with "
        "another replica"
    )
    assert replica.seen == ["U-1"] * 3  # retried (same request_id) until attempts ran out
