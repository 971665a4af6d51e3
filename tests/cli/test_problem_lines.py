"""Every command that prints a ruleset's problems prints at most 20 of a code, then a count."""

from __future__ import annotations

from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.cli.problem_lines import SHOWN_PER_CODE, ruleset_error_text
from caseroute.domain.errors import RulesetError
from caseroute.rules.compiler import load_ruleset
from caseroute.testing import REFERENCE_HOME, REPO_ROOT

REFERENCE = REFERENCE_HOME / "2026.12.1"
MORE = 5
"""Problems past the cap in the hostile file."""


def _bracketed_areas(tmp_path: Path) -> Path:
    """The reference ruleset with 25 areas written `eN: [Y56]` (a schema.type error each)."""
    text = (REFERENCE / "ruleset.yaml").read_text()
    areas = "".join(f"  e{i:05d}: [Y56]\n" for i in range(SHOWN_PER_CODE + MORE))
    home = tmp_path / "hostile"
    home.mkdir()
    (home / "ruleset.yaml").write_text(text + "areas:\n" + areas)
    return home / "ruleset.yaml"


def _counted(text: str) -> tuple[int, list[str]]:
    """How many schema.type problem lines ``text`` has, and its counting lines."""
    lines = text.splitlines()
    problems = [line for line in lines if "error schema.type" in line]
    return len(problems), [line for line in lines if line.lstrip().startswith("... and")]


def _check_the_count(text: str, path: Path) -> None:
    """20 problem lines, then one line counting the other 5 and saying how to see them."""
    shown, counting = _counted(text)
    assert shown == SHOWN_PER_CODE
    (line,) = counting
    assert line.lstrip().startswith(f"... and {MORE} more schema.type problem(s) like these")
    assert line.endswith(
        "fix the ones above and check again, or run `caseroute rules check --max-per-code 0` "
        "on the file to see every one"
    )
    assert f"from {path}:" in line


def test_rules_test_prints_a_hostile_file_s_problems_up_to_the_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules test` printed all of a hostile file's problems; the headline still counts all."""
    path = _bracketed_areas(tmp_path)
    assert main(["rules", "test", str(path.parent)]) == 1
    err = capsys.readouterr().err
    assert f"caseroute: ruleset has {SHOWN_PER_CODE + MORE} error(s):" in err
    _check_the_count(err, path)


def test_decide_with_a_hostile_ruleset_prints_its_problems_up_to_the_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A dry run's ruleset error (main's handler, every command's) printed every problem."""
    path = _bracketed_areas(tmp_path)
    examples = REPO_ROOT / "examples"
    case, roster = examples / "cases" / "clinical-tx.json", examples / "roster.json"
    code = main(["decide", "--case", str(case), "--roster", str(roster), "--ruleset", str(path)])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"caseroute: ruleset has {SHOWN_PER_CODE + MORE} error(s):\n")
    _check_the_count(err, path)


def test_rules_fmt_prints_a_hostile_file_s_problems_up_to_the_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules fmt` refusing a file that does not load printed every problem."""
    path = _bracketed_areas(tmp_path)
    assert main(["rules", "fmt", "--check", str(path)]) == 2
    _check_the_count(capsys.readouterr().out, path)


def test_rules_diff_prints_a_hostile_file_s_problems_up_to_the_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules diff` against a file that does not load printed every problem."""
    path = _bracketed_areas(tmp_path)
    assert main(["rules", "diff", str(REFERENCE), str(path)]) == 2
    _check_the_count(capsys.readouterr().err, path)


def test_a_ruleset_error_of_few_problems_reads_as_its_own_message(tmp_path: Path) -> None:
    """Under the cap nothing changes: the text is the error's own (headline, a problem a line)."""
    path = tmp_path / "ruleset.yaml"
    text = (REFERENCE / "ruleset.yaml").read_text()
    path.write_text(text + "areas:\n  e1: [Y56]\n  A: B\n  B: A\n")
    with pytest.raises(RulesetError) as raised:
        load_ruleset(path)
    assert str(raised.value) == ruleset_error_text(raised.value)
