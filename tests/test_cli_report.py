"""`caseroute report`: formats, the period and ruleset filters, the empty period, bad flags."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from caseroute.cli import main
from caseroute.testing import NOW
from tests.report_log import DAY2, PATIENT_NAME, record_ops_log


@pytest.fixture(scope="module")
def audit_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The eleven decisions of ``tests/report_log`` (nine on day 1, two on day 2)."""
    return record_ops_log(tmp_path_factory.mktemp("ops"))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["report", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _json(capsys: pytest.CaptureFixture[str], audit_db: Path, *argv: str) -> Any:
    code, out, err = _run(capsys, "--audit-db", str(audit_db), "--format", "json", *argv)
    assert (code, err) == (0, "")
    return json.loads(out)


def test_default_format_piped_is_plain_text(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a terminal: plain aligned tables, headed by the count and the period."""
    code, out, err = _run(capsys, "--audit-db", str(audit_db))
    lines = out.splitlines()
    assert (code, err) == (0, "")
    assert lines[0] == (
        "caseroute report: 11 decision(s) between the start of the log and the end of the log "
        "(first 2026-11-21T10:00:00Z, last 2026-11-22T10:00:00Z)"
    )
    assert "  all                  11  12.0  30.0  40.0" in lines
    assert "  ASSIGN         5  45.45%" in lines


def test_json_and_markdown_formats(audit_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """JSON is the documented document; Markdown starts with its heading."""
    data = _json(capsys, audit_db)
    assert (
        data["schema_version"],
        data["decisions"],
        data["outcomes"]["ASSIGN"],
    ) == (1, 11, {"count": 5, "rate": 5 / 11})
    code, out, _ = _run(capsys, "--audit-db", str(audit_db), "--format", "markdown")
    assert (code, out.splitlines()[0]) == (0, "## Operations report")
    assert "| critical_case | 2 | 18.18% |" in out.splitlines()


def test_period_is_since_inclusive_until_exclusive(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--since keeps decisions at that instant, --until drops them; offsets are honoured."""
    day2 = _json(capsys, audit_db, "--since", "2026-11-22T10:00:00Z")
    assert (
        day2["decisions"],
        {k: day2["period"][k] for k in ("since", "until")},
    ) == (2, {"since": "2026-11-22T10:00:00Z", "until": None})
    # 11:00Z written as 13:00+02:00, until 12:00Z: the hour-1 decisions C2 and C3 only.
    hour1 = _json(
        capsys, audit_db, "--since", "2026-11-21T13:00:00+02:00", "--until", "2026-11-21T12:00:00Z"
    )
    assert (
        hour1["decisions"],
        {k: v["count"] for k, v in hour1["outcomes"].items() if v["count"]},
    ) == (2, {"ESCALATE": 1, "EXCEPTION": 1})


def test_ruleset_filter(audit_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--ruleset test counts all eleven; the ruleset name is echoed in the JSON."""
    data = _json(capsys, audit_db, "--ruleset", "test")
    assert (data["decisions"], data["ruleset"]) == (11, "test")


def test_empty_period_says_so_and_exits_0(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No decisions: one clear line (table/markdown); JSON still prints, the line on stderr."""
    since = (DAY2 + timedelta(days=1)).isoformat()
    message = (
        "no decisions between 2026-11-23T10:00:00Z and the end of the log; widen "
        "--since/--until, or check --audit-db names the server's decision log"
    )
    for fmt in ("table", "markdown"):
        code, out, err = _run(
            capsys, "--audit-db", str(audit_db), "--since", since, "--format", fmt
        )
        assert (0, message + "\n", "") == (code, out, err)
    code, out, err = _run(capsys, "--audit-db", str(audit_db), "--since", since, "--format", "json")
    assert (0, 0, f"caseroute: {message}\n") == (code, json.loads(out)["decisions"], err)
    code, out, _ = _run(capsys, "--audit-db", str(audit_db), "--ruleset", "test", "--since", since)
    assert (code, out.split(";")[0]) == (
        0,
        "no decisions of ruleset test between 2026-11-23T10:00:00Z and the end of the log",
    )


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_ruleset_no_record_names_is_a_usage_error_listing_the_log_s_names(
    audit_db: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """A misspelt --ruleset says so, with the names the log holds and a did-you-mean: exit 2.

    Review R36 F11: it read as an empty period, told to widen --since/--until, exit 0.
    """
    for name, guess in (("tset", " (did you mean 'test'?)"), ("other", "")):
        code, out, err = _run(
            capsys, "--audit-db", str(audit_db), "--ruleset", name, "--format", fmt
        )
        assert (code, out, err) == (
            2,
            "",
            (
                "caseroute: no decision, ruleset event or shadow result in the decision log "
                f"{audit_db} names ruleset '{name}'{guess}; it holds ruleset(s) 'test': pass "
                "one of them to --ruleset, or leave it out for all\n"
            ),
        )


def test_a_ruleset_on_a_log_holding_none_is_an_empty_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A log with no decision at all names no ruleset either: the empty period's advice stands."""
    from caseroute.audit.store import SqliteAuditStore

    SqliteAuditStore(tmp_path / "audit.db").close()
    (tmp_path / "audit.db").chmod(0o600)
    code, out, err = _run(capsys, "--audit-db", str(tmp_path / "audit.db"), "--ruleset", "x")
    assert (code, err) == (0, "")
    assert out.startswith("no decisions of ruleset x between the start of the log and the end")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--since", "yesterday"],
            (
                "--since 'yesterday' is not an RFC 3339 instant YYYY-MM-DDTHH:MM:SS[.fraction] "
                "ending in Z or +HH:MM / -HH:MM; e.g. 2026-11-21T10:00:00Z"
            ),
        ),
        (
            ["--until", "2026-11-21T10:00:00"],
            (
                "--until '2026-11-21T10:00:00' is not an RFC 3339 instant "
                "YYYY-MM-DDTHH:MM:SS[.fraction] ending in Z or +HH:MM / -HH:MM; e.g. "
                "2026-11-21T10:00:00Z"
            ),
        ),
        (
            ["--since", "2026-11-22T00:00:00Z", "--until", "2026-11-21T00:00:00Z"],
            (
                "--since 2026-11-22T00:00:00Z is not before --until 2026-11-21T00:00:00Z; the "
                "period is since <= decision instant < until"
            ),
        ),
        (["--ruleset", " "], "--ruleset is empty; give a ruleset name, or leave it out for all"),
    ],
)
def test_bad_flags_are_usage_errors_naming_the_flag(
    audit_db: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """A bad --since/--until/--ruleset exits 2 with one line naming the flag, no traceback."""
    assert (2, "", f"caseroute: {message}\n") == _run(capsys, "--audit-db", str(audit_db), *argv)


def test_unknown_format_and_missing_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format csv is refused by the parser (exit 2); a missing log is a usage error."""
    with pytest.raises(SystemExit) as exited:
        main(["report", "--format", "csv"])
    assert exited.value.code == 2
    assert "argument --format: invalid choice: 'csv'" in capsys.readouterr().err
    missing = tmp_path / "nope.db"
    assert (
        2,
        "",
        (
            f"caseroute: no decision log at {missing}; pass --audit-db (or $CASEROUTE_AUDIT_DB) "
            "pointing at the server's log\n"
        ),
    ) == _run(capsys, "--audit-db", str(missing))
    assert not missing.exists()


def test_not_a_decision_log_exits_3_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that is not a caseroute log: exit 3 (unreadable, as `audit *`), one message."""
    bogus = tmp_path / "bogus.db"
    bogus.write_text("not sqlite")
    bogus.chmod(0o600)  # else the exposure warning comes first
    code, out, err = _run(capsys, "--audit-db", str(bogus))
    assert (code, out) == (3, "")
    assert err.startswith(f"caseroute: cannot open the decision log {bogus}")
    assert "Traceback" not in err


def test_no_format_prints_ids_or_patient_values(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Aggregate only: no case, decision or agent id, no patient value, no digest, any format."""
    for fmt in ("table", "json", "markdown"):
        _, out, _ = _run(capsys, "--audit-db", str(audit_db), "--format", fmt)
        assert re.findall(r"\bC\d+\b|\ba[123]\b|dec_|hmac-sha256|CASE-", out) == [], fmt
        assert PATIENT_NAME not in out
        assert NOW.isoformat() not in out  # instants are printed in the canonical Z form


def test_default_format_on_a_terminal_draws_rich_tables(
    audit_db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal: the same report as styled rich tables, sized to the terminal."""
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = _run(capsys, "--audit-db", str(audit_db), "--since", "2026-11-22T00:00:00Z")
    assert code == 0
    assert "\x1b[" in out
    assert "┃ outcome   ┃ count ┃   rate ┃" in re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert max(len(line) for line in re.sub(r"\x1b\[[0-9;]*m", "", out).splitlines()) <= 100


def test_an_edited_log_is_reported_with_a_warning_and_counted_as_hashed(
    audit_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forged decision column, then a deleted record: named first; counts come from the text."""
    before = _json(capsys, audit_db)
    edited = tmp_path / "audit.db"
    shutil.copyfile(audit_db, edited)
    edited.chmod(0o600)
    forged = '{"outcome": "EXCEPTION", "reason_codes": ["forged"]}'
    first = "record 2 was edited or moved: its content no longer matches its hash"
    with closing(sqlite3.connect(edited)) as conn:
        conn.execute("UPDATE decisions SET decision = ? WHERE seq = 2", (forged,))
        conn.commit()
    data = _json(capsys, edited)
    assert (data["chain"], data["outcomes"]) == (
        {"verified": False, "problems": 1, "first": first},
        before["outcomes"],
    )
    assert before["chain"] == {"verified": True, "problems": 0, "first": None}
    with closing(sqlite3.connect(edited)) as conn:
        conn.execute("DELETE FROM decisions WHERE seq = 5")
        conn.commit()
    code, out, _ = _run(capsys, "--audit-db", str(edited))
    assert (code, out.splitlines()[0]) == (
        0,
        (
            f"WARNING: the decision log fails its chain checks (2 problem(s); first: {first}): "
            "it was edited or damaged, so these figures cannot be trusted; run `caseroute "
            "audit verify`"
        ),
    )


DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


@pytest.mark.slow
def test_the_excerpt_in_the_docs_is_what_its_commands_print(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/operations.md's report excerpt is the output of the commands shown above it.

    Review R36 F13: it said 600 decisions beside a headline of 400, from a run no reader
    could repeat. The simulated requests are decided in-process as the server decides them
    (what the report counts does not depend on the explanation level), then the report's
    window is read; each run of lines between `...` cuts appears in order, verbatim.
    """
    from caseroute.engine.case_rules import EngineKind
    from caseroute.service import DecideCommand, RulesetRegistry
    from caseroute.simulate import simulate
    from caseroute.testing import audited_core, reference_ruleset

    text = DOC.read_text()
    commands = text[text.index("An excerpt, from a server") :]
    sent = re.search(r"simulate --cases (\d+) --agents (\d+) --seed (\d+) --server", commands)
    window = re.search(r"caseroute report --audit-db \S+ --since (\S+) --until (\S+)\n", commands)
    assert sent is not None
    assert window is not None
    excerpt = commands[commands.index("```text\n") + 8 :]
    excerpt = excerpt[: excerpt.index("```")]
    registry = RulesetRegistry()
    registry.add(reference_ruleset(EngineKind.PYTHON))
    core = audited_core(registry, tmp_path)
    for request in simulate(*map(int, sent.groups())):
        cases, roster, now = request.cases, request.roster, request.now
        core.decide(
            DecideCommand(request.request_id, "", "", cases, roster, now, agent_detail=False)
        )
    core.audit.close()
    registry.close()
    code, out, err = _run(
        capsys, "--audit-db", str(tmp_path / "audit.db"), "--since", window[1], "--until", window[2]
    )
    assert (code, err) == (0, "")
    printed = out.splitlines()
    at = 0
    for part in excerpt.split("  ...\n"):
        lines = part.rstrip("\n").splitlines()
        found = next(
            (i for i in range(at, len(printed)) if printed[i : i + len(lines)] == lines), None
        )
        assert found is not None, f"not printed (in order) as the docs show it:\n{part}"
        at = found + len(lines)
    total = re.search(r"(\d+) of the (\d+) decisions", commands)
    assert total is not None
    assert (int(total[2]), printed[0].split(" decision(s)")[0]) == (
        int(sent[1]),
        f"caseroute report: {total[1]}",
    )
