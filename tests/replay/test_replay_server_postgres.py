"""`caseroute replay --server` on a server whose decision log is PostgreSQL checks the chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from caseroute.audit.config import AuditConfig
from caseroute.audit.location import PostgresLocation
from caseroute.cli import main
from caseroute.engine.case_rules import EngineKind
from caseroute.grpc_api.auth import AuthConfig
from caseroute.grpc_api.server import RunningServer, ServerConfig, build_server
from caseroute.testing import REFERENCE_RULESET, REFERENCE_RULESETS, TEST_AUDIT_KEY
from caseroute.v1 import routing_pb2_grpc
from tests.grpc_api.conftest import decide_request
from tests.grpc_api.test_auth import ALICE, token_file
from tests.pg import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

CANDIDATE = f"{REFERENCE_RULESET.parent.name}@{REFERENCE_RULESET.name}"


@contextmanager
def serving_pg_log(audit: AuditConfig, tmp_path: Path, prefix: str) -> Iterator[RunningServer]:
    """A server recording into ``audit``'s PostgreSQL log, holding three decisions.

    Their request ids are ``PREFIX-0`` to ``PREFIX-2``, their cases C0 to C2; Alice is admin.
    """
    config = ServerConfig(
        rulesets=REFERENCE_RULESETS,
        port=0,
        engine=EngineKind.PYTHON,
        threads=2,
        audit=audit,
        auth=AuthConfig(admin_token_file=token_file(tmp_path / "admin.tokens", f"alice {ALICE}\n")),
        reload_interval_s=0,
    )
    server = build_server(config, reuse_port=False)
    try:
        server.load(config)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as chan:
            routing = routing_pb2_grpc.RoutingServiceStub(chan)
            for n in range(3):
                routing.Decide(decide_request(f"{prefix}-{n}", case_id=f"C{n}"), timeout=30)
        yield server
    finally:
        server.stop(1)


@pytest.fixture
def served(pg_url: str, tmp_path: Path) -> Iterator[RunningServer]:
    """A server recording into a PostgreSQL log, with three decisions in it; Alice is admin."""
    audit = AuditConfig.at(PostgresLocation(pg_url), key_hex=TEST_AUDIT_KEY)
    with serving_pg_log(audit, tmp_path, "pg-replay") as server:
        yield server


def _replay_json(
    server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    alice = token_file(tmp_path / "alice.token", ALICE + "\n")
    args = ["replay", "--server", f"127.0.0.1:{server.port}", "--token-file", str(alice)]
    code = main([*args, "--candidate", CANDIDATE, "--format", "json"])
    out = capsys.readouterr()
    assert (code, out.err) == (0, "")
    report: dict[str, Any] = json.loads(out.out)
    return report


def test_replay_server_reports_the_chain_of_a_postgresql_log(
    served: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The report's chain is checked (verified, no problems), not null, as for a SQLite log."""
    report = _replay_json(served, tmp_path, capsys)
    assert (report["total"], report["chain"]) == (
        3,
        {"verified": True, "problems": 0, "first": None},
    )


def test_replay_server_finds_a_record_edited_in_a_postgresql_log(
    served: RunningServer, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record whose hashed text was edited in PostgreSQL fails the report's chain check."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        seq = conn.execute("SELECT seq FROM decisions WHERE case_id = 'C1'").fetchone()
        assert seq is not None
        conn.execute(
            "UPDATE decisions SET content = replace(content, '\"C1\"', '\"C9\"') WHERE seq = %s",
            (seq[0],),
        )
    report = _replay_json(served, tmp_path, capsys)
    assert report["chain"] == {
        "verified": False,
        "problems": 1,
        "first": f"record {seq[0]} was edited or moved: its content no longer matches its hash",
    }
    assert report["not_replayable_reasons"] == {"chain_broken": 1}
