"""``caseroute rules shadow-report``: per shadow version counts and first disagreements."""

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from caseroute.audit.record import ShadowResult
from caseroute.audit.store import SqliteAuditStore
from caseroute.cli import main
from caseroute.testing import make_audit_record

LIVE = {"outcome": "ASSIGN", "agent_id": "a1", "queue": "clinical", "rule_id": "r1"}


def _result(n: int, *differences: str, **overrides: Any) -> ShadowResult:
    shadow: dict[str, Any] = dict(LIVE)
    if "agent" in differences:
        shadow["agent_id"] = None
        shadow["outcome"] = "QUEUE"
    if "deciding_rule" in differences:
        shadow["rule_id"] = "r2"
    values: dict[str, Any] = {
        "decision_id": f"dec_{n}",
        "recorded_at": f"2026-11-21T10:00:{n:02d}Z",
        "ruleset_name": "enquiries",
        "live_version": "1",
        "live_sha256": "a" * 64,
        "shadow_version": "2",
        "shadow_sha256": "b" * 64,
        "differences": differences,
        "live": dict(LIVE),
        "shadow": shadow,
    }
    values.update(overrides)
    return ShadowResult(**values)


@pytest.fixture
def audit_db(tmp_path: Path) -> Path:
    """A log with 3 comparisons of shadow 2 (2 disagreeing), 1 of shadow 3, and drops."""
    path = tmp_path / "audit.db"
    store = SqliteAuditStore(path)
    store.append_shadow(
        [
            _result(1, "outcome", "agent"),
            _result(2),
            _result(3, "deciding_rule"),
            _result(4, shadow_version="3", shadow_sha256="c" * 64),
        ],
        {("enquiries", "2"): 2},
    )
    store.close()
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_text_report_per_shadow_version(audit_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Counts, rate, kinds, drops and each disagreement as live -> shadow per differing kind."""
    code, out, err = _run(
        capsys, "rules", "shadow-report", "enquiries", "--audit-db", str(audit_db)
    )
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "shadow report for enquiries",
        "shadow 2 (sha256 bbbbbbbbbbbb) beside live 1",
        "  evaluated 3, agreed 1, disagreed 2 (66.7%), dropped 2",
        "  differences: outcome 1, agent 1, deciding_rule 1",
        "  recorded 2026-11-21T10:00:01Z .. 2026-11-21T10:00:03Z",
        "  2 live decision(s) were not compared (the shadow queue was full)",
        "  first 2 of 2 disagreement(s):",
        "    dec_1 (live 1): outcome ASSIGN -> QUEUE; agent a1 -> (none)",
        "    dec_3 (live 1): deciding_rule r1 -> r2",
        "shadow 3 (sha256 cccccccccccc) beside live 1",
        "  evaluated 1, agreed 1, disagreed 0 (0.0%), dropped 0",
        "  recorded 2026-11-21T10:00:04Z .. 2026-11-21T10:00:04Z",
    ]


def test_json_report_with_version_and_limit(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format json is one document; --version picks one version, --limit caps the list."""
    code, out, _ = _run(
        capsys,
        "rules",
        "shadow-report",
        "enquiries",
        "--audit-db",
        str(audit_db),
        "--version",
        "2",
        "--limit",
        "1",
        "--format",
        "json",
    )
    assert code == 0
    assert json.loads(out) == {
        "ruleset": "enquiries",
        "shadow_version": "2",
        "versions": [
            {
                "shadow_version": "2",
                "shadow_sha256s": ["b" * 64],
                "live_versions": ["1"],
                "evaluated": 3,
                "agreed": 1,
                "disagreed": 2,
                "disagreement_rate": 2 / 3,
                "differences": {"outcome": 1, "agent": 1, "deciding_rule": 1},
                "dropped": 2,
                "first_recorded_at": "2026-11-21T10:00:01Z",
                "last_recorded_at": "2026-11-21T10:00:03Z",
                "disagreements": [
                    {
                        "decision_id": "dec_1",
                        "recorded_at": "2026-11-21T10:00:01Z",
                        "live_version": "1",
                        "live_sha256": "a" * 64,
                        "shadow_sha256": "b" * 64,
                        "differences": ["outcome", "agent"],
                        "live": LIVE,
                        "shadow": {**LIVE, "agent_id": None, "outcome": "QUEUE"},
                    }
                ],
            }
        ],
    }


def test_no_results_is_a_report_not_an_error(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version without results, or a ruleset on a log holding none, exits 0 saying how."""
    code, out, _ = _run(
        capsys, "rules", "shadow-report", "enquiries", "--version", "9", "--audit-db", str(audit_db)
    )
    assert (code, out) == (
        0,
        (
            "no shadow results recorded for enquiries@9: set a shadow version in the ruleset's "
            "serving.yaml, let the server decide with it for a while, then run this again\n"
        ),
    )
    empty = audit_db.parent / "empty.db"
    SqliteAuditStore(empty).close()
    empty.chmod(0o600)
    code, out, _ = _run(
        capsys, "rules", "shadow-report", "other", "--audit-db", str(empty), "--format", "json"
    )
    assert (code, json.loads(out)) == (
        0,
        {"ruleset": "other", "shadow_version": None, "versions": []},
    )


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_ruleset_no_record_names_is_a_usage_error_listing_the_log_s_names(
    audit_db: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """A misspelt NAME says so, with the names the log holds and a did-you-mean: exit 2.

    Review R36 F11: it said to set a shadow version in serving.yaml, exit 0. The names come
    from decisions and ruleset events as well as shadow results; a name the log holds with
    no shadow results keeps that advice.
    """
    store = SqliteAuditStore(audit_db)
    store.append([make_audit_record(1, ruleset_name="patient-enquiries")])
    store.close()
    argv = ("--audit-db", str(audit_db), "--format", fmt)
    for name, guess in (
        ("patient-enquirie", " (did you mean 'patient-enquiries'?)"),
        ("enquiry", " (did you mean 'enquiries'?)"),
        ("billing", ""),
    ):
        code, out, err = _run(capsys, "rules", "shadow-report", name, *argv)
        assert (code, out, err) == (
            2,
            "",
            (
                "caseroute: no decision, ruleset event or shadow result in the decision log "
                f"{audit_db} names ruleset '{name}'{guess}; it holds ruleset(s) 'enquiries', "
                "'patient-enquiries': pass one of them as NAME\n"
            ),
        )
    code, out, _ = _run(capsys, "rules", "shadow-report", "patient-enquiries", *argv[:2])
    assert (code, out) == (
        0,
        (
            "no shadow results recorded for patient-enquiries: set a shadow version in the "
            "ruleset's serving.yaml, let the server decide with it for a while, then run this "
            "again\n"
        ),
    )


def test_limit_zero_lists_counts_only_and_out_of_range_is_usage(
    audit_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--limit 0 prints no disagreements; a negative or huge --limit exits 2 saying the range."""
    code, out, _ = _run(
        capsys, "rules", "shadow-report", "enquiries", "--audit-db", str(audit_db), "--limit", "0"
    )
    assert code == 0
    assert "disagreement(s):" not in out
    for limit in ("-1", "1001"):
        code, out, err = _run(
            capsys,
            "rules",
            "shadow-report",
            "enquiries",
            "--audit-db",
            str(audit_db),
            "--limit",
            limit,
        )
        assert (code, out, err) == (
            2,
            "",
            (
                f"caseroute: --limit {limit} is out of range: give 0 to 1000 (disagreements "
                "listed per shadow version)\n"
            ),
        )


def test_a_missing_log_exits_2_an_unreadable_one_3_saying_what_to_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing file, a file that is not a log, or a log that fails mid-read exit 2."""
    code, _, err = _run(
        capsys, "rules", "shadow-report", "x", "--audit-db", str(tmp_path / "none.db")
    )
    assert (code, err) == (
        2,
        (
            f"caseroute: no decision log at {tmp_path / 'none.db'}; pass --audit-db (or "
            "$CASEROUTE_AUDIT_DB) pointing at the server's log\n"
        ),
    )
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n")
    junk.chmod(0o600)
    code, _, err = _run(capsys, "rules", "shadow-report", "x", "--audit-db", str(junk))
    # 3: the log could not be read (2 was a usage error, which the command line was not).
    assert (code, err) == (
        3,
        (
            f"caseroute: cannot open the decision log {junk}: file is not a database; check that "
            "--audit-db names a caseroute decision log and that this user can read (and, to "
            "serve, write) it and its directory\n"
        ),
    )
    broken = tmp_path / "broken.db"
    SqliteAuditStore(broken).close()
    with closing(sqlite3.connect(broken)) as conn:
        conn.execute("DROP TABLE shadow_dropped")
    code, _, err = _run(capsys, "rules", "shadow-report", "x", "--audit-db", str(broken))
    assert (code, err) == (
        3,
        (
            f"caseroute: the decision log {broken} cannot be read: OperationalError: no such "
            "table: shadow_dropped; nothing was changed; check that --audit-db names a "
            "caseroute decision log that this user can read, then run the command again\n"
        ),
    )


def test_stored_ids_cannot_drive_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rule and agent ids from the log are printed with escape sequences made visible."""
    path = tmp_path / "audit.db"
    store = SqliteAuditStore(path)
    store.append_shadow([_result(1, "deciding_rule", shadow={**LIVE, "rule_id": "r\x1b[2J"})])
    store.close()
    code, out, _ = _run(capsys, "rules", "shadow-report", "enquiries", "--audit-db", str(path))
    assert code == 0
    assert "    dec_1 (live 1): deciding_rule r1 -> r\\x1b[2J" in out.splitlines()
    assert "\x1b" not in out


def test_a_ladder_or_continuity_added_shows_what_there_was_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shadow adding a ladder and continuity prints both sides, naming their absence."""
    path = tmp_path / "audit.db"
    store = SqliteAuditStore(path)
    shadow = {**LIVE, "ladder_step": "", "continuity": "assigned_other"}
    store.append_shadow([_result(1, "relaxation", "continuity", shadow=shadow)])
    store.close()
    code, out, _ = _run(capsys, "rules", "shadow-report", "enquiries", "--audit-db", str(path))
    assert (code, out.splitlines()[-1]) == (
        0,
        (
            "    dec_1 (live 1): relaxation (no ladder) -> ladder step (none in force), relaxed "
            "nothing; continuity (none) -> assigned_other"
        ),
    )
