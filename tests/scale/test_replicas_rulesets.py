"""Rulesets across replicas: every replica serves the same active version, and a lag shows.

Replicas share one rulesets directory (a volume) and one decision log. An activation through
one replica rewrites the shared ``serving.yaml``; the others take it by polling the directory
(hot reload) or when asked (`caseroute rules reload --server`, the admin API fanned out). A
replica that has not yet reloaded is visible twice over: `caseroute rules list --server` on
it shows its own active version, and each decision's record carries the version that decided.
"""

import json
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.client import Client
from caseroute.testing import NOW, make_agent, make_case, make_roster
from tests.grpc_api.test_auth import ALICE, token_file
from tests.serve_process import Served

from .conftest import start_replica

NAME = "patient-enquiries"
SHIPPED, EARLIER = "2026.12.1", "2026.11.1"
"""The reference ruleset's active version, and the earlier one it keeps (both loaded)."""


@pytest.fixture
def tokens(tmp_path: Path) -> tuple[Path, Path]:
    """The servers' admin token file (alice) and the CLI's token file (just the token)."""
    server = token_file(tmp_path / "admin-tokens", f"alice {ALICE}\n")
    return server, token_file(tmp_path / "alice.token", f"{ALICE}\n")


def _rules(capsys: pytest.CaptureFixture[str], token: Path, *argv: str) -> str:
    """`caseroute rules ARGV --token-file TOKEN` in this process; its stdout (exit 0)."""
    code = main(["rules", *argv, "--token-file", str(token)])
    captured = capsys.readouterr()
    assert (code, captured.err) == (0, "")
    return captured.out


def _active(capsys: pytest.CaptureFixture[str], token: Path, replica: Served) -> str:
    """The active version `caseroute rules list --server` reports for the replica."""
    out = _rules(capsys, token, "list", "--server", replica.address, "--format", "json")
    [status] = [s for s in json.loads(out)["rulesets"] if s["name"] == NAME]
    version: str = status["active_version"]
    return version


def _decided_version(replica: Served, case_id: str) -> tuple[str, str]:
    """Decide a new case on this replica alone: (the reply's version, the version recorded)."""
    roster = make_roster(make_agent("a1"), make_agent("a2"))
    with Client(replica.address, timeout=60) as client:
        reply = client.decide(make_case(case_id=case_id), roster, now=NOW)
        assert not reply.replayed
        logged = client.get_decision(reply.decision.decision_id)
    return reply.decision.explanation.ruleset_version, logged.decision.explanation.ruleset_version


def test_a_lagging_replica_shows_in_rules_list_and_records_until_reload_fans_out(
    tmp_path: Path,
    audit_db: str,
    rulesets: Path,
    replicas: list[Served],
    tokens: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Activated on A only: B lists and records its old version until `rules reload` on B."""
    admin = ("--admin-token-file", str(tokens[0]))
    a, b = (start_replica(tmp_path, audit_db, rulesets, extra=admin) for _ in range(2))
    replicas.extend([a, b])
    assert [_active(capsys, tokens[1], r) for r in (a, b)] == [SHIPPED, SHIPPED]

    _rules(capsys, tokens[1], "activate", NAME, EARLIER, "--server", a.address)
    assert [_active(capsys, tokens[1], r) for r in (a, b)] == [EARLIER, SHIPPED]
    assert [_decided_version(a, "A-1"), _decided_version(b, "B-1")] == [
        (EARLIER, EARLIER),
        (SHIPPED, SHIPPED),
    ]

    _rules(capsys, tokens[1], "reload", "--server", b.address)  # the fan-out's second call
    assert [_active(capsys, tokens[1], r) for r in (a, b)] == [EARLIER, EARLIER]
    assert _decided_version(b, "B-2") == (EARLIER, EARLIER)


def test_an_activation_reaches_a_polling_replica_through_the_shared_directory(
    tmp_path: Path,
    audit_db: str,
    rulesets: Path,
    replicas: list[Served],
    tokens: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """B polls the shared directory: A's activation rewrites serving.yaml, and B follows it."""
    admin = ("--admin-token-file", str(tokens[0]))
    a = start_replica(tmp_path, audit_db, rulesets, extra=admin)
    b = start_replica(tmp_path, audit_db, rulesets, extra=(*admin, "--reload-interval", "0.2"))
    replicas.extend([a, b])
    _rules(capsys, tokens[1], "activate", NAME, EARLIER, "--server", a.address)
    b.wait_for('"actor": "poll"')  # B's poll saw serving.yaml change and swapped
    assert [_active(capsys, tokens[1], r) for r in (a, b)] == [EARLIER, EARLIER]
    with Client([a.address, b.address], timeout=60) as client:
        replies = [
            client.decide(make_case(case_id=f"P-{i}"), make_roster(make_agent("a1")), now=NOW)
            for i in range(4)
        ]
    assert {r.decision.explanation.ruleset_version for r in replies} == {EARLIER}
