"""`caseroute replay`: formats, the --fail-on gate, candidates by path or NAME@VERSION, errors."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest
from google.protobuf import json_format

from caseroute.cli import main
from caseroute.replay import feeds
from caseroute.v1 import routing_pb2 as pb
from tests.replay.recorded import CANDIDATES, record_log


@pytest.fixture(scope="module")
def audit_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed decision log holding the three records of tests/replay/recorded.py."""
    directory = tmp_path_factory.mktemp("cli-replay")
    record_log(directory).close()
    return directory / "audit.db"


@pytest.fixture(scope="module")
def rulesets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rulesets directory holding test@2 as the `queue` candidate, plus each candidate file."""
    root = tmp_path_factory.mktemp("rulesets")
    (root / "test" / "2").mkdir(parents=True)
    (root / "test" / "2" / "ruleset.yaml").write_text(CANDIDATES["queue"])
    for name, text in CANDIDATES.items():
        (root / f"{name}.yaml").write_text(text)
    return root


def _replay(audit_db: Path, rulesets: Path, *args: str) -> list[str]:
    return [
        "replay",
        "--audit-db",
        str(audit_db),
        "--rulesets",
        str(rulesets),
        "--engine",
        "python",
        "--workers",
        "1",
        *args,
    ]


def test_json_report_by_name_at_version(
    audit_db: Path, rulesets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--candidate test@2 resolves under --rulesets; --format json prints the schema's top level."""
    code = main(_replay(audit_db, rulesets, "--candidate", "test@2", "--format", "json"))
    data = json.loads(capsys.readouterr().out)
    assert (
        code,
        data["total"],
        data["changed"],
        data["not_replayable"],
        data["candidate"]["ruleset_version"],
    ) == (0, 3, 2, 0, "2")
    assert data["classes"]["queue_changed"] == 2


def test_fail_on_gate_passes_under_the_rate(
    audit_db: Path, rulesets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2 of 3 queue changes pass a 70% gate: exit 0 and nothing on stderr."""
    code = main(
        _replay(
            audit_db,
            rulesets,
            "--candidate",
            str(rulesets / "queue.yaml"),
            "--fail-on",
            "queue_changed=70%",
            "--fail-on",
            "outcome_changed=0",
        )
    )
    assert (code, capsys.readouterr().err) == (0, "")


def test_fail_on_gate_fails_over_the_rate(
    audit_db: Path, rulesets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """2 of 3 queue changes exceed a 0.5 gate: exit 1 and stderr says by how much."""
    code = main(
        _replay(
            audit_db,
            rulesets,
            "--candidate",
            str(rulesets / "queue.yaml"),
            "--fail-on",
            "queue_changed=0.5",
        )
    )
    assert (code, capsys.readouterr().err) == (
        1,
        "caseroute: replay gate failed: queue_changed: 2 of 3 = 66.6667% exceeds 50.0000%\n",
    )


def test_fail_on_unknown_class_is_a_usage_error_naming_the_valid_ones(
    audit_db: Path, rulesets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown --fail-on class exits 2 and lists every valid class."""
    code = main(_replay(audit_db, rulesets, "--candidate", "test@2", "--fail-on", "outcome=1%"))
    assert (code, capsys.readouterr().err) == (
        2,
        (
            "caseroute: --fail-on 'outcome=1%': the class must be one of outcome_changed, "
            "agent_changed, queue_changed, priority_changed, escalation_added, escalation_removed, "
            "deciding_rule_changed, new_exception, relaxation_changed, continuity_changed, "
            "not_replayable, unchanged, changed, written "
            "CLASS=RATE, e.g. --fail-on outcome_changed=0.5%\n"
        ),
    )


@pytest.mark.parametrize("rate", ["150%", "2", "x", ""])
def test_fail_on_bad_rate_is_a_usage_error(
    audit_db: Path, rulesets: Path, capsys: pytest.CaptureFixture[str], rate: str
) -> None:
    """A rate outside 0-1 (or 0%-100%), or not a number, exits 2 saying how to write it."""
    code = main(
        _replay(audit_db, rulesets, "--candidate", "test@2", "--fail-on", f"changed={rate}")
    )
    assert (
        2,
        (
            f"caseroute: --fail-on 'changed={rate}': the rate must be a share from 0 to 1 (0.005) "
            "or a percentage from 0% to 100% (0.5%)\n"
        ),
    ) == (code, capsys.readouterr().err)


def test_changed_gate_counts_every_changed_record(
    audit_db: Path, rulesets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--fail-on changed=0 fails as soon as any record changed."""
    code = main(_replay(audit_db, rulesets, "--candidate", "test@2", "--fail-on", "changed=0"))
    assert code == 1
    assert "replay gate failed: changed: 2 of 3" in capsys.readouterr().err


def test_unknown_candidate_version_lists_what_there_is(
    audit_db: Path, rulesets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NAME@VERSION not under --rulesets exits 2 naming the expected path and the versions found."""
    code = main(_replay(audit_db, rulesets, "--candidate", "test@9"))
    assert (
        2,
        (
            f"caseroute: --candidate: no ruleset version test@9 under {rulesets} (expected "
            f"{rulesets}/test/9/ruleset.yaml); versions there: test@2; nor has it decided any "
            "record in the decision log; pass --rulesets DIR or a path\n"
        ),
    ) == (code, capsys.readouterr().err)


def test_plain_table_when_stdout_is_not_a_terminal(
    audit_db: Path, rulesets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default format prints plain lines (no ANSI) to a pipe, headline first."""
    code = main(_replay(audit_db, rulesets, "--candidate", "test@2"))
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("replay under test@2 (")
    assert "queue_changed                2  66.67%" in out.splitlines()
    assert "\x1b" not in out


def test_markdown_report(
    audit_db: Path, rulesets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format markdown starts with a heading and tables a change request can hold."""
    main(_replay(audit_db, rulesets, "--candidate", "test@2", "--format", "markdown"))
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["## Replay under `test@2`", ""]
    assert "| queue_changed | 2 | 66.67% |" in lines


def test_input_without_audit_db_reports_records_not_replayable(
    audit_db: Path, rulesets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--input alone has no roster snapshots: every record is not_replayable (roster_missing)."""
    main(["audit", "export", "--audit-db", str(audit_db)])
    export = tmp_path / "export.jsonl"
    export.write_text(capsys.readouterr().out)
    code = main(
        [
            "replay",
            "--input",
            str(export),
            "--candidate",
            "test@2",
            "--rulesets",
            str(rulesets),
            "--engine",
            "python",
            "--format",
            "json",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert (
        code,
        data["not_replayable"],
        data["not_replayable_reasons"],
    ) == (0, 3, {"roster_missing": 3})


def test_input_with_audit_db_replays_from_the_export(
    audit_db: Path, rulesets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--input with --audit-db reads records from the file and snapshots from the log."""
    main(["audit", "export", "--audit-db", str(audit_db), "--case-id", "C3"])
    export = tmp_path / "export.jsonl"
    export.write_text(capsys.readouterr().out)
    code = main(
        _replay(
            audit_db, rulesets, "--input", str(export), "--candidate", "test@2", "--format", "json"
        )
    )
    data = json.loads(capsys.readouterr().out)
    assert (code, data["total"], data["classes"]["queue_changed"]) == (0, 1, 1)


def test_input_in_camel_case_json_names_replays_like_the_export(
    audit_db: Path, rulesets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """AuditedDecision lines with grpcurl's camelCase names replay as the export itself does."""
    main(["audit", "export", "--audit-db", str(audit_db)])
    lines = capsys.readouterr().out.splitlines()
    snake, camel, both = (tmp_path / f"{name}.jsonl" for name in ("snake", "camel", "both"))
    snake.write_text("".join(f"{line}\n" for line in lines))
    messages = [json_format.Parse(line, pb.AuditedDecision()) for line in lines]
    camel.write_text("".join(json.dumps(json_format.MessageToDict(m)) + "\n" for m in messages))
    assert '"inputJson"' in camel.read_text()
    reports = []
    for export in (snake, camel):
        args = ("--input", str(export), "--candidate", "test@2", "--format", "json")
        code = main(_replay(audit_db, rulesets, *args))
        reports.append((code, capsys.readouterr().out))
    assert reports[1] == reports[0]
    assert json.loads(reports[0][1])["total"] == 3
    doubled = json.loads(lines[0])
    doubled["inputJson"] = doubled["input_json"]
    both.write_text(json.dumps(doubled) + "\n")
    code = main(_replay(audit_db, rulesets, "--input", str(both), "--candidate", "test@2"))
    assert (code, capsys.readouterr().err) == (
        2,
        (
            f"caseroute: {both}:1: the line names `input_json` twice (as `input_json` and "
            "`inputJson`); write each field once, in one spelling; --input takes the output of "
            "`caseroute audit export` (one record per line)\n"
        ),
    )


def test_missing_input_file_is_a_usage_error(
    rulesets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--input naming no file exits 2 saying what to pass."""
    code = main(
        [
            "replay",
            "--input",
            str(tmp_path / "nope.jsonl"),
            "--candidate",
            "test@2",
            "--rulesets",
            str(rulesets),
        ]
    )
    assert (
        2,
        (
            f"caseroute: no file at --input {tmp_path / 'nope.jsonl'}; pass the output of "
            "`caseroute audit export`\n"
        ),
    ) == (code, capsys.readouterr().err)


def test_missing_audit_db_is_a_usage_error(
    rulesets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --audit-db that does not exist exits 2 (the log is opened read-only, never created)."""
    code = main(_replay(tmp_path / "none.db", rulesets, "--candidate", "test@2"))
    assert code == 2
    assert not (tmp_path / "none.db").exists()
    assert capsys.readouterr().err.startswith(f"caseroute: no decision log at {tmp_path}")


def test_invalid_candidate_exits_1_with_its_problems(
    audit_db: Path, rulesets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A candidate that does not compile exits 1 with file:line problems."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(CANDIDATES["queue"].replace("when: true", "when: case.urgncy == 'x'"))
    code = main(_replay(audit_db, rulesets, "--candidate", str(bad)))
    err = capsys.readouterr().err
    assert code == 1
    assert f"{bad}:" in err


def test_workers_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    """--workers 0 is refused by the parser (exit 2)."""
    with pytest.raises(SystemExit) as caught:
        main(["replay", "--candidate", "test@2", "--workers", "0"])
    assert caught.value.code == 2
    assert "--workers must be a whole number of at least 1" in capsys.readouterr().err


def test_name_at_version_not_on_disk_comes_from_the_log(
    audit_db: Path, rulesets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """test@1 decided the log but is not under --rulesets: the source the log stored is used."""
    code = main(_replay(audit_db, rulesets, "--candidate", "test@1", "--format", "json"))
    data = json.loads(capsys.readouterr().out)
    assert (code, data["candidate"]["ruleset_version"], data["classes"]["unchanged"]) == (
        0,
        "1",
        3,
    )


def test_name_at_version_whose_stored_source_was_edited_is_refused(
    audit_db: Path, rulesets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """test@1's source edited in (a copy of) the log is refused, exit 2, never replayed."""
    edited = tmp_path / "audit.db"
    shutil.copyfile(audit_db, edited)
    edited.chmod(0o600)
    with closing(sqlite3.connect(edited)) as conn:
        (sha,) = conn.execute("SELECT DISTINCT ruleset_sha256 FROM decisions").fetchone()
        conn.execute(
            "UPDATE blobs SET content = replace(content, 'urgent', 'routine') WHERE sha256 = ?",
            (sha,),
        )
        conn.commit()
    code = main(_replay(edited, rulesets, "--candidate", "test@1", "--format", "json"))
    captured = capsys.readouterr()
    assert (code, captured.out, captured.err) == (
        2,
        "",
        (
            f"caseroute: --candidate: the decision log's source of test@1 (sha256 {sha[:12]}) "
            "was edited: it no longer hashes to the sha256 that decided; run `caseroute audit "
            "verify`, or pass the ruleset's path instead\n"
        ),
    )


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_goes_to_a_terminal_stderr_only(
    audit_db: Path,
    rulesets: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On a terminal stderr a progress bar counts the records (3/3); stdout keeps the report."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code = main(_replay(audit_db, rulesets, "--candidate", "test@2", "--format", "json"))
    assert (code, json.loads(capsys.readouterr().out)["total"]) == (0, 3)
    assert "replaying" in terminal.getvalue()
    assert "3/3" in terminal.getvalue()


def test_audit_db_defaults_to_the_environment(
    audit_db: Path,
    rulesets: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --audit-db or --input, $CASEROUTE_AUDIT_DB names the log."""
    monkeypatch.setenv("CASEROUTE_AUDIT_DB", str(audit_db))
    argv = ["replay", "--candidate", "test@2", "--rulesets", str(rulesets), "--engine", "python"]
    code = main([*argv, "--format", "json"])
    assert (code, json.loads(capsys.readouterr().out)["total"]) == (0, 3)


def test_bad_input_line_is_a_usage_error_with_file_and_line(
    rulesets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An --input line that is not JSON exits 2 naming file:line and what --input takes."""
    export = tmp_path / "export.jsonl"
    export.write_text("not json\n")
    code = main(
        ["replay", "--input", str(export), "--candidate", "test@2", "--rulesets", str(rulesets)]
    )
    assert (code, capsys.readouterr().err) == (
        2,
        (
            f"caseroute: {export}:1: not JSON; --input takes the output of `caseroute audit "
            "export` (one record per line)\n"
        ),
    )


def test_input_not_utf8_is_a_usage_error_saying_so(
    audit_db: Path, rulesets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An export saved as UTF-16 (PowerShell's `>`) or gzipped exits 2, never a traceback."""
    main(["audit", "export", "--audit-db", str(audit_db)])
    text = capsys.readouterr().out
    utf16, gzipped = tmp_path / "utf16.jsonl", tmp_path / "export.jsonl.gz"
    utf16.write_text(text, encoding="utf-16")
    gzipped.write_bytes(gzip.compress(text.encode()))
    for export in (utf16, gzipped):
        code = main(
            ["replay", "--input", str(export), "--candidate", "test@2", "--rulesets", str(rulesets)]
        )
        assert (code, capsys.readouterr().err) == (
            2,
            (
                f"caseroute: {export}:1: not UTF-8 text (saved as UTF-16, as PowerShell's `>` "
                "does, or compressed?); --input takes the output of `caseroute audit export` "
                "as written, UTF-8\n"
            ),
        )


def test_a_line_not_utf8_is_the_same_usage_error_with_workers(
    audit_db: Path,
    rulesets: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With --workers 2 an undecodable line after good ones reaches the pool: exit 2 alike."""
    monkeypatch.setattr(feeds, "CHUNK", 1)  # one line per chunk: the good lines fill the pool
    main(["audit", "export", "--audit-db", str(audit_db)])
    text = capsys.readouterr().out
    export = tmp_path / "tail.jsonl"
    export.write_bytes(text.encode() + b"\xff\xfe{}\n")
    bad_at = text.count("\n") + 1
    code = main(
        [
            "replay",
            "--input",
            str(export),
            "--candidate",
            "test@2",
            "--rulesets",
            str(rulesets),
            "--workers",
            "2",
        ]
    )
    assert (bad_at > 2, code, capsys.readouterr().err.partition(";")[0]) == (
        True,
        2,
        (
            f"caseroute: {export}:{bad_at}: not UTF-8 text (saved as UTF-16, as PowerShell's "
            "`>` does, or compressed?)"
        ),
    )


def test_input_line_nested_too_deep_is_a_usage_error(
    rulesets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line nested deeper than the JSON decoder goes exits 2 naming file:line."""
    export = tmp_path / "deep.jsonl"
    export.write_text("\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    code = main(
        ["replay", "--input", str(export), "--candidate", "test@2", "--rulesets", str(rulesets)]
    )
    assert (code, capsys.readouterr().err) == (
        2,
        (
            f"caseroute: {export}:2: not JSON (nested too deep); --input takes the output of "
            "`caseroute audit export` (one record per line)\n"
        ),
    )


@pytest.mark.parametrize("value", ["x", "0", "-3"])
def test_limit_must_be_a_positive_number(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--limit that is not a whole number of at least 1 is refused by the parser (exit 2)."""
    with pytest.raises(SystemExit) as caught:
        main(["replay", "--candidate", "test@2", "--limit", value])
    assert caught.value.code == 2
    assert "--limit must be a whole number of at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("since", "until"),
    [("2026-11-22T00:00:00Z", "2026-11-21T00:00:00Z"), ("2026-11-21T00:00:00Z",) * 2],
)
def test_a_window_holding_no_instant_is_a_usage_error(
    audit_db: Path, rulesets: Path, capsys: pytest.CaptureFixture[str], since: str, until: str
) -> None:
    """--since not before --until exits 2 (it replayed nothing and passed every gate)."""
    code = main(
        _replay(
            audit_db,
            rulesets,
            "--candidate",
            "test@2",
            "--since",
            since,
            "--until",
            until,
            "--fail-on",
            "changed=0",
        )
    )
    captured = capsys.readouterr()
    assert (code, captured.out, captured.err) == (
        2,
        "",
        (
            f"caseroute: --since {since} is not before --until {until}; replay reads decisions "
            "with since <= now < until\n"
        ),
    )


def _export_lines(audit_db: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    main(["audit", "export", "--audit-db", str(audit_db)])
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_export_line_without_its_decision_is_not_replayable(
    audit_db: Path,
    rulesets: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    workers: str,
) -> None:
    """A line `audit export` wrote for a record it could not rebuild: not_replayable, named.

    It ended in a traceback (`'UNSPECIFIED' is not a valid Outcome`, review R34c F2). With no
    decision it names no ruleset either, so it is counted under the candidate, never skipped.
    """
    monkeypatch.setattr(feeds, "CHUNK", 1)  # with --workers 2, each line its own chunk
    lines = _export_lines(audit_db, capsys)
    del lines[1]["decision"]
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(line) + "\n" for line in lines))
    args = ("--input", str(export), "--candidate", "test@2", "--format", "json")
    code = main([*_replay(audit_db, rulesets)[:-1], workers, *args])
    data = json.loads(capsys.readouterr().out)
    assert (
        code,
        data["total"],
        data["other_ruleset"],
        data["not_replayable_reasons"],
        data["samples"]["not_replayable"][0]["reason"],
    ) == (
        0,
        3,
        0,
        {"invalid_decision": 1},
        (
            f"record {lines[1]['seq']} was exported without its decision: `caseroute audit "
            "export` could not rebuild it from the decision log (its stored decision or the "
            "ruleset source it was decided with was edited or lost); run `caseroute audit "
            "verify` on the log"
        ),
    )
    main([*_replay(audit_db, rulesets)[:-1], workers, *args[:-2]])  # the plain lines
    shown = capsys.readouterr().out
    assert f"  (no decision id): record {lines[1]['seq']} was exported without" in shown


@pytest.mark.parametrize("workers", ["1", "2"])
def test_an_export_line_whose_decision_does_not_decode_is_a_usage_error(
    audit_db: Path,
    rulesets: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    workers: str,
) -> None:
    """A `decision` with no outcome exits 2 naming file:line, never a traceback (R34c F2)."""
    monkeypatch.setattr(feeds, "CHUNK", 1)
    lines = _export_lines(audit_db, capsys)
    lines[2]["decision"] = {"decision_id": "dec_x"}
    export = tmp_path / "export.jsonl"
    export.write_text("".join(json.dumps(line) + "\n" for line in lines))
    args = ("--input", str(export), "--candidate", "test@2")
    code = main([*_replay(audit_db, rulesets)[:-1], workers, *args])
    assert (code, capsys.readouterr().err) == (
        2,
        (
            f"caseroute: {export}:3: the line has a `decision` caseroute cannot read "
            "('UNSPECIFIED' is not a valid Outcome); --input takes the output of `caseroute "
            "audit export` (one record per line)\n"
        ),
    )


def test_an_export_of_summary_decisions_lists_the_agent_checks_the_log_does(
    rulesets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SUMMARY records list no per-agent check rows, from the log or from `audit export`.

    A summary explanation keeps no verdicts: its failed-check bitmasks are empty when every
    agent was eligible, and an export drops them (AuditedDecision has no field for them). Read
    as "no agent evaluated", every agent of a changed record was listed as `not evaluated ->
    skills`, the agent the recording chose included.
    """
    summary_db = tmp_path / "audit.db"
    record_log(tmp_path, agent_detail=False).close()
    main(["audit", "export", "--audit-db", str(summary_db)])
    export = tmp_path / "export.jsonl"
    export.write_text(capsys.readouterr().out)
    reports = []
    for source in ((), ("--input", str(export))):
        args = (*source, "--candidate", str(rulesets / "agent.yaml"), "--format", "json")
        assert main(_replay(summary_db, rulesets, *args)) == 0
        data = json.loads(capsys.readouterr().out)
        reports.append({k: v for k, v in data.items() if k != "chain"})  # an export's is null
    from_log, from_export = reports
    changed = from_log["samples"]["agent_changed"]
    assert (len(changed), [s["agent_checks"] for s in changed]) == (2, [[], []])
    assert from_export == from_log
