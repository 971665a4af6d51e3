"""`caseroute rules diff OLD NEW`: formats, exit codes (0 same meaning, 1 differ, 2 error)."""

import json
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.rules import compiler
from caseroute.rules import diff as diff_module
from caseroute.rules.compiler import load_ruleset
from caseroute.rules.diff import diff_rulesets
from caseroute.rules.diff_render import diff_as_data
from caseroute.testing import CATCH_ALL_RULE, REPO_ROOT, ruleset_with_rules
from tests.rules.lint_texts import NO_LICENCE
from tests.rules.test_diff import EXPECTED_TEXT, FIXTURES

BASE = ruleset_with_rules(
    """\
  - id: clinical
    when: case.intent == 'clinical'
    then: {route: {queue: clinical, licence: [RN]}}
  - id: billing
    when: case.intent == 'billing'
    then: {route: {queue: billing}}
"""
    + CATCH_ALL_RULE
)


def _write(directory: Path, text: str) -> Path:
    directory.mkdir()
    (directory / "ruleset.yaml").write_text(text)
    return directory


def _diff(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["rules", "diff", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def at_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository root, so fixture paths print as written in the tests."""
    monkeypatch.chdir(REPO_ROOT)


@pytest.mark.usefixtures("at_repo")
def test_text_is_default_and_exit_1_when_they_differ(capsys: pytest.CaptureFixture[str]) -> None:
    """Two versions that differ in meaning: the text diff on stdout, nothing on stderr, exit 1."""
    result = _diff(capsys, f"{FIXTURES}/old", f"{FIXTURES}/new")
    assert (1, "\n".join(EXPECTED_TEXT) + "\n", "") == result


@pytest.mark.usefixtures("at_repo")
def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    """--format json: the diff as data (exit 1), e.g. the removed rule with its OLD file:line."""
    code, out, _ = _diff(capsys, f"{FIXTURES}/old", f"{FIXTURES}/new", "--format", "json")
    data = json.loads(out)
    expected = diff_as_data(
        diff_rulesets(load_ruleset(FIXTURES / "old"), load_ruleset(FIXTURES / "new"))
    )
    removed_rule = {
        "section": "rules",
        "kind": "removed",
        "subject": "billing-dispute",
        "field": "position",
        "old": 7,
        "new": None,
        "location": f"{FIXTURES}/old/ruleset.yaml:91",
        "semantic": True,
    }
    assert (1, expected, removed_rule, (True, True, 30, 5)) == (
        code,
        data,
        data["changes"][-1],
        (data["differs"], data["sha256_differs"], data["semantic_changes"], data["other_changes"]),
    )


def test_markdown_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format markdown: summary, version table, then one list item per change."""
    old = _write(tmp_path / "old", BASE)
    new_text = (
        BASE.replace('version: "1"', 'version: "2"')
        .replace("queue: clinical, licence: [RN]", "queue: clinical, licence: [RN, LPN]")
        .replace("when: case.intent == 'billing'", "when: case.intent=='billing'")
    )
    new = _write(tmp_path / "new", new_text)
    old_sha = load_ruleset(old).sha256
    new_sha = load_ruleset(new).sha256
    code, out, _ = _diff(capsys, str(old), str(new), "--format", "markdown")
    assert (
        1,
        [
            "### Ruleset diff: `test` `1` → `2`",
            "",
            "**1 semantic change(s), 3 other change(s)**",
            "",
            "| | old | new |",
            "| --- | --- | --- |",
            "| ruleset | `test` | `test` |",
            "| version | `1` | `2` |",
            f"| file | `{old}/ruleset.yaml` | `{new}/ruleset.yaml` |",
            f"| sha256 | `{old_sha}` | `{new_sha}` |",
            "",
            "#### metadata",
            "",
            f'- `version`: `"1"` -> `"2"` (`{new}/ruleset.yaml:2`) _(no effect on decisions)_',
            f"- `sha256`: `{old_sha}` -> `{new_sha}` _(no effect on decisions)_",
            "",
            "#### rules",
            "",
            f"- rule `clinical` `route.licence`: `[RN]` -> `[RN, LPN]` (`{new}/ruleset.yaml:16`)",
            (
                "- rule `billing` `when`: reworded, same meaning: "
                "`\"case.intent == 'billing'\"` -> "
                f"`\"case.intent=='billing'\"` (`{new}/ruleset.yaml:18`) "
                "_(no effect on decisions)_"
            ),
        ],
    ) == (code, out.splitlines())


def test_whitespace_only_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Comment and layout edits only: 'no semantic changes', the sha256 line, exit 0."""
    old = _write(tmp_path / "old", BASE)
    new = _write(tmp_path / "new", "# reviewed 2026-11\n" + BASE.replace("rules:", "rules:   "))
    code, out, err = _diff(capsys, str(old), str(new))
    expected = (
        0,
        "no semantic changes (only whitespace, comments or layout); the sha256 differs",
        "",
    )
    assert expected == (code, out.splitlines()[-1], err)


def test_broken_version_exits_2_with_file_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NEW that does not load: its problems with file:line on stderr, nothing on stdout, 2."""
    old = _write(tmp_path / "old", BASE)
    new = _write(tmp_path / "new", BASE.replace("case.intent == 'billing'", "case.intnt == 'x'"))
    code, out, err = _diff(capsys, str(old), str(new))
    assert (
        2,
        "",
        [
            (
                f"{new}/ruleset.yaml:6: warning lint.no_consent: no consent constraint: a case "
                "flagged consent_missing goes to the exceptions queue instead of queueing for "
                "consent; add `consent: {flag: consent_missing}` under `constraints`"
            ),
            f"{new}/ruleset.yaml:6: warning lint.no_licence: {NO_LICENCE}",
            (
                f"{new}/ruleset.yaml:18:11: error expr.unknown_field [rule billing]: unknown field "
                "`case.intnt` (did you mean `case.intent`?)"
            ),
            (
                f"caseroute: NEW ruleset {new} has 1 error(s); fix them (`caseroute rules check` "
                "lists them) and diff again"
            ),
        ],
    ) == (code, out, err.splitlines())


def test_both_broken_are_both_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """OLD and NEW both missing: both are reported in one run (exit 2)."""
    code, _, err = _diff(capsys, str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"))
    assert (
        2,
        [
            (
                f"{tmp_path}/a.yaml: error source.unreadable: cannot read file: No such file or "
                "directory; check the path"
            ),
            (
                f"caseroute: OLD ruleset {tmp_path}/a.yaml has 1 error(s); fix them (`caseroute "
                "rules check` lists them) and diff again"
            ),
            (
                f"{tmp_path}/b.yaml: error source.unreadable: cannot read file: No such file or "
                "directory; check the path"
            ),
            (
                f"caseroute: NEW ruleset {tmp_path}/b.yaml has 1 error(s); fix them (`caseroute "
                "rules check` lists them) and diff again"
            ),
        ],
    ) == (code, err.splitlines())


def test_a_diff_failure_is_exit_2_not_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error while comparing exits 2 (1 would read as 'they differ')."""

    def broken(*_: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(diff_module, "diff_rulesets", broken)
    old = _write(tmp_path / "old", BASE)
    code, out, err = _diff(capsys, str(old), str(old))
    expected = (
        2,
        "",
        (
            "caseroute: error: caseroute failed while comparing these rulesets (a bug: please "
            "report it with both files)\n"
        ),
    )
    assert expected == (code, out, err)


def test_control_characters_are_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bidi override in an operator's description is printed as an escape, never raw."""
    old = _write(tmp_path / "old", BASE)
    new = _write(tmp_path / "new", BASE.replace("test ruleset", "test \u202eruleset"))
    code, out, _ = _diff(capsys, str(old), str(new))
    assert (
        0,
        (
            f'  ~ description: "test ruleset" -> "test \\u202eruleset"  ({new}/ruleset.yaml:3)  '
            "(no effect on decisions)"
        ),
    ) == (code, out.splitlines()[3])


def test_help_states_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """--help says what exit 0, 1 and 2 mean."""
    with pytest.raises(SystemExit):
        main(["rules", "diff", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    expected = (True, True, True)
    assert expected == (
        "0 when the two are identical in meaning" in text,
        "1 when they differ" in text,
        "2 when either cannot be loaded" in text,
    )


def test_a_loader_failure_is_exit_2_not_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error while loading a version exits 2 with a message, not a traceback."""

    def broken(_: Path) -> None:
        raise RuntimeError("loader bug")

    monkeypatch.setattr(compiler, "load_ruleset", broken)
    old = _write(tmp_path / "old", BASE)
    code, out, err = _diff(capsys, str(old), str(old))
    expected = (
        2,
        "",
        [
            (
                f"caseroute: error: caseroute failed while loading the OLD ruleset {old} (a bug: "
                "please report it with the file)"
            ),
            (
                f"caseroute: error: caseroute failed while loading the NEW ruleset {old} (a bug: "
                "please report it with the file)"
            ),
        ],
    )
    assert expected == (code, out, err.splitlines())
