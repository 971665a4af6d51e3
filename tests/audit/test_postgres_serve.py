"""A gRPC server on the PostgreSQL sink: decides, reads back, and follows the database's health."""

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from caseroute.audit.config import AuditConfig
from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.server import ROUTING_SERVICE, RunningServer, ServerConfig, build_server
from caseroute.service import RoutingCore, RulesetRegistry
from caseroute.testing import REFERENCE_RULESET, TEST_AUDIT_KEY
from caseroute.v1 import routing_pb2 as pb
from caseroute.v1 import routing_pb2_grpc
from tests.grpc_api.conftest import decide_request
from tests.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]


def _health_of(chan: grpc.Channel) -> str:
    stub: Any = health_pb2_grpc.HealthStub(chan)  # typeshed's stub lacks Check
    status = stub.Check(health_pb2.HealthCheckRequest(service=ROUTING_SERVICE), timeout=5).status
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    return name


@pytest.fixture
def served(pg_url: str) -> Iterator[RunningServer]:
    """A loaded in-process server whose decision log is PostgreSQL (calls refused after 1 s)."""
    audit = AuditConfig.at(PostgresLocation(pg_url), key_hex=TEST_AUDIT_KEY)
    config = ServerConfig(
        rulesets=REFERENCE_RULESET.parent,
        port=0,
        engine=EngineKind.PYTHON,
        threads=2,
        audit=audit,
        audit_probe_s=0,
    )
    sink = PostgresAuditSink(PostgresLocation(pg_url), timeout_s=1)
    sink.claim_key(*_claim())
    core = RoutingCore(RulesetRegistry(), sink, audit.masker())
    server = build_server(config, reuse_port=False, core=core)
    server.load(config)
    yield server
    server.stop(1)


def _claim() -> tuple[str, str]:
    from caseroute.audit.masking import key_fingerprint

    return key_fingerprint(bytes.fromhex(TEST_AUDIT_KEY)), "2026-12-01T00:00:00Z"


def _block_connections(pg_url: str, allow: bool) -> None:
    """Refuse (and drop) or allow again every connection to the test's database."""
    database = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )


def test_decide_and_read_back_through_the_decision_log_service(served: RunningServer) -> None:
    """Decide records in PostgreSQL; GetDecision and ListDecisions read it; a retry is equal."""
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as chan:
        routing = routing_pb2_grpc.RoutingServiceStub(chan)
        first = routing.Decide(decide_request("pg-1"), timeout=30)
        again = routing.Decide(decide_request("pg-1"), timeout=30)
        log = routing_pb2_grpc.DecisionLogStub(chan)
        got = log.GetDecision(pb.GetDecisionRequest(decision_id=first.decision.decision_id))
        listed = log.ListDecisions(pb.ListDecisionsRequest(case_id=first.decision.case_id))
    assert first.decision == again.decision
    assert (got.seq, got.request_id, got.decision.decision_id) == (
        2,  # after the ruleset's load event
        "pg-1",
        first.decision.decision_id,
    )
    assert [d.decision.decision_id for d in listed.decisions] == [first.decision.decision_id]


def test_a_row_edited_after_it_was_hashed_is_data_loss_on_postgresql(
    served: RunningServer, pg_url: str
) -> None:
    """Columns edited beside the hashed text: both reads refuse it, naming the decision.

    GetDecision and ListDecisions served the edited request_id and caller columns as the
    record (OK); the message says what to run and names no server path or exception.
    """
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as chan:
        first = routing_pb2_grpc.RoutingServiceStub(chan).Decide(
            decide_request("pg-edited"), timeout=30
        )
        decision_id = first.decision.decision_id
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE decisions SET request_id = 'r-forged', caller = 'forger' "
                "WHERE decision_id = %s",
                (decision_id,),
            )
        log = routing_pb2_grpc.DecisionLogStub(chan)
        reads: list[Callable[[], object]] = [
            lambda: log.GetDecision(pb.GetDecisionRequest(decision_id=decision_id), timeout=30),
            lambda: log.ListDecisions(
                pb.ListDecisionsRequest(case_id=first.decision.case_id), timeout=30
            ),
        ]
        refusals = []
        for read in reads:
            with pytest.raises(grpc.RpcError) as refused:
                read()
            refusals.append((refused.value.code(), refused.value.details()))
    expected = (
        "record 2 was edited or moved: its content no longer matches its hash (decision "
        f"{decision_id!r}): it is not served, since the decision log was edited after it was "
        "recorded; run `caseroute audit verify` on the log and restore it from a copy you trust"
    )
    assert refusals == [(grpc.StatusCode.DATA_LOSS, expected)] * 2


def test_health_follows_the_database(served: RunningServer, pg_url: str) -> None:
    """Database gone: UNAVAILABLE and NOT_SERVING; back: the next write succeeds, SERVING."""
    with grpc.insecure_channel(f"127.0.0.1:{served.port}") as chan:
        routing = routing_pb2_grpc.RoutingServiceStub(chan)
        seen = [_health_of(chan)]
        _block_connections(pg_url, allow=False)
        try:
            with pytest.raises(grpc.RpcError) as refused:
                routing.Decide(decide_request("pg-down"), timeout=30)
            seen.append(_health_of(chan))
        finally:
            _block_connections(pg_url, allow=True)
        # The pool reconnects with back-off, so the first attempts after the database came back
        # may still be refused UNAVAILABLE; a caller retries (same request_id, as the published
        # client does), and a write succeeds within a bounded number of attempts.
        for _ in range(30):
            try:
                after = routing.Decide(decide_request("pg-back"), timeout=30)
                break
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
        else:
            pytest.fail("no Decide succeeded within 30 attempts after the database came back")
        seen.append(_health_of(chan))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "postgresql" not in (refused.value.details() or "")
    assert after.decision.decision_id
    assert seen == ["SERVING", "NOT_SERVING", "SERVING"]
