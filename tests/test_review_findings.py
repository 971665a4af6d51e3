"""Defects found by the adversarial review of the issue-8 change, each pinned by a test."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest

from caseroute.audit.store import WRITE_UNAVAILABLE, SqliteAuditStore
from caseroute.cli import main
from caseroute.domain.errors import AuditUnavailableError, FieldViolation, RequestError
from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE
from caseroute.service import DecisionLog, DecisionQuery
from caseroute.service.decision_log import _query_key
from caseroute.testing import ruleset_with_rules

TOKEN_REFUSED = FieldViolation("page_token", "is not a token this service issued; omit it to start")


PHI_ERROR = "cannot store " + "Zebedee " + "Quarrelsome"
"""An error text quoting a value (built so no traceback source line spells the name)."""


def _forged_token(after_literal: str) -> str:
    """A page token for the unfiltered listing whose ``after`` is ``after_literal`` (raw JSON)."""
    raw = f'{{"after": {after_literal}, "query": "{_query_key(DecisionQuery())}"}}'
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("after", ["1e999", "-1e999", str(2**70), "-1", "1.5", "true"])
def test_a_forged_page_token_position_is_a_page_token_error(tmp_path: Path, after: str) -> None:
    """A token whose position is infinite, huge, negative or not an integer is INVALID_ARGUMENT."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    try:
        with pytest.raises(RequestError) as caught:
            DecisionLog(store).list(DecisionQuery(page_token=_forged_token(after)))
    finally:
        store.close()
    assert caught.value.violations == (TOKEN_REFUSED,)


def _append_within(store: SqliteAuditStore, seconds: float) -> BaseException | str | None:
    """Run an empty append on a thread: its exception, None on success, "hung" if it never ends."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            store.append([], [])
        except BaseException as exc:  # noqa: BLE001 - the test inspects whatever came out
            outcome.append(exc)
        else:
            outcome.append(None)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)  # a bound, not a pause: a healthy append returns in milliseconds
    return outcome[0] if outcome else "hung"


def test_an_unexpected_writer_error_refuses_the_batch_and_keeps_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-SQLite error while committing refuses that call; later appends still commit."""
    store = SqliteAuditStore(tmp_path / "audit.db")
    commit = store._commit
    calls: list[int] = []

    def fail_once(conn: object, batch: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError(PHI_ERROR)
        commit(conn, batch)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_commit", fail_once)
    try:
        first = _append_within(store, 10)
        second = _append_within(store, 10)
    finally:
        store.close()
    assert isinstance(first, AuditUnavailableError)
    assert (str(first), second, len(calls)) == (WRITE_UNAVAILABLE, None, 2)
    failures = [r.getMessage().splitlines()[0] for r in caplog.records if r.levelname == "ERROR"]
    assert [
        (
            f"AUDIT WRITE FAILED (1 calls refused) on {store.path}: ValueError (message withheld: "
            "it may quote record values)"
        )
    ] == failures
    assert "Zebedee" not in caplog.text


def test_cli_decide_tells_an_invalid_case_by_the_rulesets_safeguarding_flag(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`caseroute decide` puts the not-routed notice first for the ruleset's own flag."""
    ruleset = tmp_path / "ruleset.yaml"
    ruleset.write_text(
        ruleset_with_rules("  - id: rest\n    when: true\n    then: {route: {queue: by_intent}}\n")
        .replace("flag: safeguarding", "flag: sg_concern")
        .replace("'safeguarding' in", "'sg_concern' in")
    )
    case = tmp_path / "case.json"
    case.write_text('{"case_id": "c1", "flags": ["SG_CONCERN"]}')
    roster = tmp_path / "roster.json"
    roster.write_text('{"snapshot_id": "r1", "taken_at": "2026-11-21T10:00:00Z", "agents": []}')
    argv = ["decide", "--case", str(case), "--roster", str(roster), "--ruleset", str(ruleset)]
    code = main([*argv, "--engine", "python"])
    lines = capsys.readouterr().err.splitlines()
    assert (code, lines[:2]) == (
        2,
        ["caseroute: invalid request (5 problem(s)):", f"  - case.flags: {SAFEGUARDING_NOTICE}"],
    )
