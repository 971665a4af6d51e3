"""`caseroute replay --server` on a PostgreSQL log: its reads are bounded by liveness.

The server's writer bounds each of its statements by ``timeout_s`` (a caller is waiting on a
decision). A replay is an auditor's read: a long scan on a live server must run on, and only a
server that stops answering cuts it (``[audit] pg_liveness``), as for ``audit verify``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from caseroute.audit import config as audit_config
from caseroute.audit.config import AuditConfig
from caseroute.audit.location import PostgresLocation
from caseroute.audit.postgres import PostgresAuditSink
from caseroute.cli import main
from caseroute.grpc_api.server import RunningServer
from caseroute.testing import REFERENCE_RULESET, TEST_AUDIT_KEY
from tests.audit.test_postgres_frozen import _until, _within_deadline, cluster, db_url
from tests.audit.test_postgres_liveness import _frozen_at_first_read
from tests.grpc_api.test_auth import ALICE, token_file
from tests.pg import Cluster, pg_server, pg_url
from tests.replay.test_replay_server_postgres import serving_pg_log

__all__ = ["cluster", "db_url", "pg_server", "pg_url"]  # fixtures, imported for pytest

CANDIDATE = f"{REFERENCE_RULESET.parent.name}@{REFERENCE_RULESET.name}"
WRITER_TIMEOUT_S = 1.0
"""The server's writer's bound on each statement (``timeout_s``), short for the test."""
LIVENESS_S = 0.5
"""The server's liveness period (``[audit] pg_liveness``)."""


@contextmanager
def _serving(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    """A server on a PostgreSQL log (writer bound 1 s, liveness 0.5 s) holding 3 decisions."""

    def short_writer(
        location: PostgresLocation, *, readonly: bool = False, liveness_s: float | None = None
    ) -> PostgresAuditSink:
        assert liveness_s is not None
        return PostgresAuditSink(
            location, readonly=readonly, liveness_s=liveness_s, timeout_s=WRITER_TIMEOUT_S
        )

    monkeypatch.setattr(audit_config, "open_postgres", short_writer)
    audit = AuditConfig.at(PostgresLocation(url), key_hex=TEST_AUDIT_KEY, pg_liveness_s=LIVENESS_S)
    with serving_pg_log(audit, tmp_path, "pg-live") as server:
        yield server


def _replay_args(server: RunningServer, tmp_path: Path) -> list[str]:
    alice = token_file(tmp_path / "alice.token", ALICE + "\n")
    return [
        *("replay", "--server", f"127.0.0.1:{server.port}", "--token-file", str(alice)),
        *("--candidate", CANDIDATE, "--format", "json"),
    ]


def _waited_past_the_writers_bound(url: str) -> bool:
    """Whether a caseroute statement has waited on a lock for over twice the writer's bound."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'caseroute' "
            "AND wait_event_type = 'Lock' AND state = 'active' "
            "AND clock_timestamp() - query_start > %s * interval '1 second'",
            (2 * WRITER_TIMEOUT_S,),
        ).fetchone()
    return bool(row and row[0])


def test_a_replay_read_held_past_the_writers_bound_on_a_live_server_completes(
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A replay whose read waits longer than the writer's timeout_s on a live server reports.

    Before, the read ran on the writer's sessions (statement and lock timeouts of
    ``timeout_s``) and under its watchdog: a long scan was cut and the replay UNAVAILABLE.
    """
    outcome: list[int] = []
    with _serving(pg_url, tmp_path, monkeypatch) as server:
        args = _replay_args(server, tmp_path)
        with psycopg.connect(pg_url) as holder, holder.transaction():
            # The replay's statement runs on a live server with no reply for longer than the
            # writer's bound, as a long scan of a large log does.
            holder.execute("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE")
            replaying = threading.Thread(target=lambda: outcome.append(main(args)), daemon=True)
            replaying.start()
            _until(
                lambda: not replaying.is_alive() or _waited_past_the_writers_bound(pg_url),
                "the replay's read waits on the lock",
            )
        replaying.join(60)
    out, err = capsys.readouterr()
    assert (outcome, err) == ([0], "")
    report: dict[str, Any] = json.loads(out)
    assert (report["total"], report["chain"]["verified"]) == (3, True)


def test_a_replay_on_a_server_that_froze_is_unavailable_not_held(
    cluster: Cluster,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A frozen database still ends the replay: UNAVAILABLE naming no server to the caller."""
    with _serving(db_url, tmp_path, monkeypatch) as server:
        args = _replay_args(server, tmp_path)
        thaw = _frozen_at_first_read(cluster, monkeypatch)
        try:
            code = _within_deadline(lambda: main(args))
        finally:
            thaw()
    out, err = capsys.readouterr()
    assert (code, out) == (3, "")  # no report: an outage, not a gate exceeded (1)
    assert err == (
        "caseroute: server answered UNAVAILABLE: the decision log cannot be read; retry later "
        "(the server log has why)\n"
    )
    logged = [r.getMessage() for r in caplog.records if r.name == "caseroute.replay_admin"]
    assert len(logged) == 1
    assert logged[0].startswith(
        f"Replay: cannot read the decision log: PostgreSQL at 127.0.0.1:{cluster.port} stopped "
        "answering while caseroute read the decision log "
    )


def test_a_read_only_sink_is_its_own_auditor_reader(pg_url: str) -> None:
    """``auditor_reads`` of a read-only sink opens nothing more: it reads as it is."""
    PostgresAuditSink(PostgresLocation(pg_url)).close()  # the schema
    auditor = PostgresAuditSink(PostgresLocation(pg_url), readonly=True)
    try:
        with auditor.auditor_reads() as reads:
            assert reads is auditor
    finally:
        auditor.close()
