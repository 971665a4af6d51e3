"""`caseroute rules new-version`: drafts are copied from the active version, never by hand."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from caseroute.cli.command import main
from caseroute.rules.compiler import load_ruleset
from caseroute.testing import REFERENCE_HOME, REPO_ROOT

PINNED = "2026.11.1"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A one-version copy of the reference home: version ``PINNED`` and a pointer naming it.

    Pinned to that version (the home now holds later ones): these tests are about drafting
    versions, not about the routing policy of whichever version is active.
    """
    copy = tmp_path / "patient-enquiries"
    shutil.copytree(REFERENCE_HOME / PINNED, copy / PINNED)
    (copy / "serving.yaml").write_text(f'active: "{PINNED}"\n')
    return copy


def test_new_version_copies_the_active_version_with_its_golden_cases(home: Path) -> None:
    """The draft differs from its source only in `version:`, and brings golden/ along."""
    assert main(["rules", "new-version", str(home), "--version", "2026.12.0"]) == 0
    draft = load_ruleset(home / "2026.12.0")
    source = load_ruleset(REFERENCE_HOME / PINNED)
    assert (draft.name, draft.version) == (source.name, "2026.12.0")
    assert draft.source_text.replace('version: "2026.12.0"', 'version: "2026.11.1"') == (
        source.source_text
    )
    assert sorted(p.name for p in (home / "2026.12.0" / "golden").iterdir()) == sorted(
        p.name for p in (REFERENCE_HOME / PINNED / "golden").iterdir()
    )
    assert 'active: "2026.11.1"' in (home / "serving.yaml").read_text()  # still a draft


def test_new_version_prints_next_steps_with_the_rulesets_name(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Docs walk, finding 16: the activate hint said `<name>` although the name is known."""
    assert main(["rules", "new-version", str(home), "--version", "2026.12.0"]) == 0
    draft, source = home / "2026.12.0", home / PINNED
    assert capsys.readouterr().out.splitlines() == [
        f"created {draft} from {PINNED} (a draft: nothing serves it until activated)",
        "next: edit it, then",
        f"  caseroute rules check {draft} [--roster roster.json]",
        f"  caseroute rules test {draft}",
        f"  caseroute rules diff {source} {draft}",
        "  caseroute rules activate patient-enquiries 2026.12.0 --server HOST:PORT",
    ]


def test_new_version_never_overwrites(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing version directory is refused with what to do."""
    assert main(["rules", "new-version", str(home), "--version", "2026.11.1"]) == 2
    assert "already exists: a version is never overwritten" in capsys.readouterr().err


def test_new_version_refuses_an_invalid_version(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version with a slash would escape the ruleset's directory: refused."""
    assert main(["rules", "new-version", str(home), "--version", "../x"]) == 2
    assert "is not a version" in capsys.readouterr().err
    assert not (home.parent / "x").exists()


def test_rules_check_of_a_home_checks_every_version(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules check rulesets/<name>` checks each version directory, not a missing file."""
    main(["rules", "new-version", str(home), "--version", "2026.12.0"])
    capsys.readouterr()
    assert main(["rules", "check", str(home)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ok")[0] for line in lines if ": ok" in line] == [
        str(home / "2026.11.1"),
        str(home / "2026.12.0"),
    ]


def test_decide_with_a_home_uses_the_version_its_pointer_names(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The local decide reads serving.yaml: a newer draft directory does not decide."""
    main(["rules", "new-version", str(home), "--version", "2027.01.0"])
    capsys.readouterr()
    examples = REPO_ROOT / "examples"
    code = main(
        [
            "decide",
            "--ruleset",
            str(home),
            "--case",
            str(examples / "cases" / "clinical-tx.json"),
            "--roster",
            str(examples / "roster.json"),
            "--now",
            "2026-11-21T10:00:00Z",
        ]
    )
    assert code == 0
    assert "version 2026.11.1" in capsys.readouterr().out


def test_rules_test_of_a_home_reports_every_version_in_one_json_document(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CI reads one JSON document listing each version's golden run."""
    main(["rules", "new-version", str(home), "--version", "2026.12.0"])
    capsys.readouterr()
    assert main(["rules", "test", str(home), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["ok"], [(p["version"], p["ok"]) for p in doc["paths"]]) == (
        True,
        [("2026.11.1", True), ("2026.12.0", True)],
    )


def test_rules_test_of_a_home_writes_one_junit_report_with_a_suite_per_version(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One JUnit XML document, one testsuite per version."""
    main(["rules", "new-version", str(home), "--version", "2026.12.0"])
    capsys.readouterr()
    assert main(["rules", "test", str(home), "--format", "junit"]) == 0
    root = ET.fromstring(capsys.readouterr().out)  # noqa: S314 - our own output
    assert [s.get("name") for s in root.iter("testsuite")] == [
        "patient-enquiries@2026.11.1",
        "patient-enquiries@2026.12.0",
    ]


def test_rules_test_of_a_home_in_text_heads_each_version(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text output says which version each block of results belongs to."""
    main(["rules", "new-version", str(home), "--version", "2026.12.0"])
    capsys.readouterr()
    assert main(["rules", "test", str(home)]) == 0
    heads = [line for line in capsys.readouterr().out.splitlines() if line.startswith("== ")]
    assert heads == [f"== {home / '2026.11.1'}", f"== {home / '2026.12.0'}"]


def test_a_version_that_does_not_load_fails_the_json_report_with_its_problems(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One broken version: ok false, its problems with file:line, the other still tested."""
    main(["rules", "new-version", str(home), "--version", "2026.12.0"])
    broken = home / "2026.12.0" / "ruleset.yaml"
    broken.write_text(broken.read_text().replace("owner:", "ownr:", 1))
    capsys.readouterr()
    assert main(["rules", "test", str(home), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    good, bad = doc["paths"]
    assert (doc["ok"], good["ok"], bad["ok"]) == (False, True, False)
    assert [
        (p["code"], p["file"]) for p in bad["problems"] if p["code"] == "schema.unknown_key"
    ] == [("schema.unknown_key", str(broken))]


def test_a_version_that_does_not_load_in_text_lists_its_problems_and_fails(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text mode: the load problems are printed with file:line and the command fails."""
    main(["rules", "new-version", str(home), "--version", "2026.12.0"])
    broken = home / "2026.12.0" / "ruleset.yaml"
    broken.write_text(broken.read_text().replace("owner:", "ownr:", 1))
    capsys.readouterr()
    assert main(["rules", "test", str(home / "2026.12.0")]) == 1
    err = capsys.readouterr().err
    assert f"{broken}:" in err
    assert "schema.unknown_key" in err


def test_rules_test_of_a_home_in_text_goes_on_past_a_version_that_does_not_load(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R34b F7: text mode stopped at the first broken version; the next was never run.

    The broken version's problems are printed (stderr, file:line), the later version's golden
    run follows, and the command fails.
    """
    main(["rules", "new-version", str(home), "--version", "2026.12.0"])
    broken = home / "2026.11.1" / "ruleset.yaml"
    broken.write_text(broken.read_text().replace("owner:", "ownr:", 1))
    capsys.readouterr()
    assert main(["rules", "test", str(home)]) == 1
    captured = capsys.readouterr()
    assert f"{broken}:" in captured.err
    out = captured.out.splitlines()
    later = out.index(f"== {home / '2026.12.0'}")
    assert out[later - 2 : later] == [f"== {home / '2026.11.1'}", ""]
    assert out[-1] == ""
    assert out[-2].endswith(" passed, 0 failed")


def test_a_version_without_golden_cases_fails_and_the_next_is_tested(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R34b F7: "no golden cases" ended the whole command (exit 2) in every format.

    It is now that version's failure (golden.none, naming its golden directory); the other
    version is tested, in text and in JSON.
    """
    main(["rules", "new-version", str(home), "--version", "2026.12.0"])
    for path in (home / "2026.11.1" / "golden").iterdir():
        path.unlink()
    capsys.readouterr()
    assert main(["rules", "test", str(home)]) == 1
    captured = capsys.readouterr()
    assert f"{home / '2026.11.1' / 'golden'}: error golden.none: no golden cases" in captured.err
    assert captured.out.splitlines()[-2].endswith(" passed, 0 failed")
    assert main(["rules", "test", str(home), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [(p["version"], p["ok"], [q["code"] for q in p["problems"]]) for p in doc["paths"]] == [
        ("2026.11.1", False, ["golden.none"]),
        ("2026.12.0", True, []),
    ]
