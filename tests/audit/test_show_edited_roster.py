"""`audit show` of a record whose roster snapshot was edited in the store says so; it raised.

A roster blob that is no roster's JSON (a manifest's header cut, a manifest listing a chunk
too often, a whole blob rewritten) made ``audit show`` end in a JSONDecodeError traceback. The
auditor reading that record is the one who needs to hear the snapshot was edited.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.domain.case import Intent, Urgency
from caseroute.domain.fingerprint import roster_sha256
from caseroute.service import DecideCommand, RoutingCore
from caseroute.testing import NOW, make_agent, make_case, make_roster
from tests.audit.test_show_compact import core

__all__ = ["core"]  # the fixture: a core over the reference ruleset with its own SQLite log

ROSTER = make_roster(*[make_agent(f"a{i}") for i in range(12)])
SHA = roster_sha256(ROSTER)
EDITS = {
    "manifest's header cut": "UPDATE blobs SET content = substr(content, 2) WHERE sha256 = ?",
    "manifest lists a chunk 17 times": (
        "UPDATE blobs SET content = content || replace(printf('%.*c', 16, '#'), '#', "
        "char(10) || substr(content, instr(content, char(10)) + 1, 64)) WHERE sha256 = ?"
    ),
    "whole blob cut short": (
        "UPDATE blobs SET kind = 'roster', content = '{\"agents\":[' WHERE sha256 = ?"
    ),
    "whole blob of other JSON": "UPDATE blobs SET kind = 'roster', content = '[]' WHERE sha256 = ?",
    "nested past the parser's depth": (
        "UPDATE blobs SET kind = 'roster', content = printf('%.*c', 200000, '[') WHERE sha256 = ?"
    ),
    "a kind no caseroute writes": "UPDATE blobs SET kind = 'zzz' WHERE sha256 = ?",
    "agents without ids": (
        "UPDATE blobs SET kind = 'roster', content = "
        '\'{"agents":[{}],"snapshot_id":"s","taken_at":"t"}\' WHERE sha256 = ?'
    ),
}


def _decided(core: RoutingCore) -> str:
    """One decision on ROSTER, recorded; its id."""
    case = make_case(case_id="C1", intent=Intent.BILLING, urgency=Urgency.ROUTINE)
    result = core.decide(DecideCommand("r1", "", "", (case,), ROSTER, NOW))
    return result.decisions[0].decision_id


@pytest.mark.parametrize("edit", list(EDITS))
def test_show_says_the_snapshot_was_edited(
    core: RoutingCore, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str
) -> None:
    """The record is shown, its roster line saying the snapshot is no roster's JSON."""
    decision_id = _decided(core)
    core.audit.close()
    db = tmp_path / "audit.db"
    with closing(sqlite3.connect(db)) as conn, conn:
        assert conn.execute(EDITS[edit], (SHA,)).rowcount == 1
    assert main(["audit", "show", decision_id, "--audit-db", str(db)]) == 0
    out = capsys.readouterr().out
    assert (
        f"  input: roster snapshot {SHA} EDITED in the store: it is not a roster's JSON "
        "(run `caseroute audit verify`)"
    ) in out.splitlines()
    assert f"Audit record 1: decision {decision_id}" in out


def test_an_unedited_snapshot_is_named_with_its_agents(
    core: RoutingCore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same record, unedited: the snapshot's id, time and agent count, as before."""
    decision_id = _decided(core)
    core.audit.close()
    assert main(["audit", "show", decision_id, "--audit-db", str(tmp_path / "audit.db")]) == 0
    out = capsys.readouterr().out
    assert f"12 agents (sha256 {SHA})" in out
    assert "EDITED" not in out
