"""The line after a ruleset's problems says what would help, by where the problems are.

It said "Run `caseroute rules check` on the ruleset." for every RulesetError: also for a source
only the decision log holds (no file for `rules check`), a path holding no ruleset, and a
serving.yaml, where the file to fix is the pointer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from caseroute import __version__
from caseroute.audit.record import Blob, BlobKind, blob_sha256
from caseroute.cli import main
from caseroute.testing import REFERENCE_HOME, audit_config, make_audit_record

CASE = Path(__file__).resolve().parents[2] / "examples" / "cases" / "clinical-tx.json"
ROSTER = CASE.parent.parent / "roster.json"
ACTIVE = "2026.12.1"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A copy of the reference ruleset's directory (its versions and serving.yaml)."""
    copy = tmp_path / "rulesets" / "patient-enquiries"
    shutil.copytree(REFERENCE_HOME, copy)
    return copy


def _decide_error(capsys: pytest.CaptureFixture[str], ruleset: Path) -> tuple[int, list[str]]:
    """`caseroute decide` with ``ruleset``: its exit code and stderr's lines."""
    argv = ["decide", "--case", str(CASE), "--roster", str(ROSTER), "--engine", "python"]
    code = main([*argv, "--ruleset", str(ruleset)])
    return code, capsys.readouterr().err.splitlines()


def test_a_ruleset_file_with_errors_is_sent_to_rules_check_of_that_file(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A problem in the version's file: fix it there, and `rules check` names the file."""
    path = home / ACTIVE / "ruleset.yaml"
    path.write_text(path.read_text().replace("\nowner:", "\nownr:", 1))
    code, err = _decide_error(capsys, home)
    assert (code, err[-1]) == (
        1,
        (
            f"Fix the problems at the lines above, then run `caseroute rules check {path}` (it "
            "reports every problem and warning)."
        ),
    )


def test_a_pointer_that_does_not_read_is_the_file_to_fix(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """serving.yaml with a misspelt key: fix the pointer, then check the ruleset's directory."""
    (home / "serving.yaml").write_text(f'actve: "{ACTIVE}"\n')
    code, err = _decide_error(capsys, home)
    assert (code, err[-1]) == (
        1,
        (
            f"Fix {home / 'serving.yaml'} at the line above (it names the version that serves), "
            f"then run `caseroute rules check {home}`."
        ),
    )


def test_a_pointer_naming_a_version_not_there_says_so(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """serving.yaml naming 2027.1, absent: the pointer is what to change, not the path given."""
    (home / "serving.yaml").write_text('active: "2027.1"\n')
    code, err = _decide_error(capsys, home)
    assert (code, err[-1]) == (
        1,
        (
            f"{home / 'serving.yaml'} names version 2027.1, which is not in {home}: point "
            f"`active:` at a version that exists (`caseroute rules check {home}` lists what "
            "loads), or pass a version's directory."
        ),
    )


def test_a_directory_holding_no_ruleset_is_told_to_check_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No ruleset.yaml there: `rules check` would say the same; the path is what to fix."""
    code, err = _decide_error(capsys, tmp_path)
    assert (code, err[-1]) == (
        1,
        (
            f"Check the path: {tmp_path / 'ruleset.yaml'} must be a ruleset file, or a directory "
            "holding ruleset.yaml, that this user can read."
        ),
    )


def test_a_replay_candidate_from_the_log_that_does_not_compile_is_not_sent_to_rules_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """test@9 read from the log's stored source, which this caseroute does not compile.

    No file holds it, so `rules check` cannot be pointed at it: replay with the caseroute that
    recorded it, or pass the version's file.
    """
    text = 'ruleset: test\nversion: "9"\n'  # no rules: it does not compile
    sha = blob_sha256(BlobKind.RULESET, text)
    store = audit_config(tmp_path).open_store()
    try:
        record = make_audit_record(1, ruleset_version="9", ruleset_sha256=sha)
        store.append([record], [Blob(sha, BlobKind.RULESET, text)])
    finally:
        store.close()
    (tmp_path / "rulesets").mkdir()
    code = main(
        [
            "replay",
            "--audit-db",
            str(tmp_path / "audit.db"),
            "--rulesets",
            str(tmp_path / "rulesets"),
            "--engine",
            "python",
            "--workers",
            "1",
            "--candidate",
            "test@9",
        ]
    )
    err = capsys.readouterr().err.splitlines()
    assert (code, err[-1]) == (
        1,
        (
            "This is the source test@9 decided with, as the decision log stored it; it does not "
            f"compile with caseroute {__version__}, and no file holds it "
            "for `caseroute rules check`: replay with the caseroute version that recorded it, or "
            "pass --candidate the version's file or directory once it loads here."
        ),
    )
    assert err[1].startswith("  test@9 (from the decision log)")
