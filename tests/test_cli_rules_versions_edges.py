"""`caseroute rules new-version`: every refusal says what is wrong and what to do; no half draft."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from caseroute.cli.command import main
from caseroute.rules.compiler import load_ruleset
from caseroute.testing import REFERENCE_HOME

ACTIVE = "2026.11.1"  # the version the `home` fixture copies and its serving.yaml names


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A one-version copy of the reference home: version ``ACTIVE`` and a pointer naming it.

    Pinned to that version (the home now holds later ones): these tests are about drafting
    versions, not about the routing policy of whichever version is active.
    """
    copy = tmp_path / "patient-enquiries"
    shutil.copytree(REFERENCE_HOME / ACTIVE, copy / ACTIVE)
    (copy / "serving.yaml").write_text(f'active: "{ACTIVE}"\n')
    return copy


def _new_version(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["rules", "new-version", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _entries(home: Path) -> list[str]:
    return sorted(p.name for p in home.iterdir())


def _rewrite_version_line(home: Path, replacement: str) -> Path:
    path = home / ACTIVE / "ruleset.yaml"
    path.write_text(path.read_text().replace(f'version: "{ACTIVE}"', replacement))
    return path


def test_a_single_ruleset_file_home_is_refused_with_how_to_convert_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PATH holding ruleset.yaml directly: refused, saying where to move it and what to write."""
    flat = tmp_path / "flat"
    shutil.copytree(REFERENCE_HOME / ACTIVE, flat)
    assert _new_version(capsys, str(flat), "--version", "2026.12.0") == (
        2,
        "",
        (
            f"caseroute: {flat} holds a single ruleset file, not versions: move it to "
            f"{flat}/<its version>/ruleset.yaml and write {flat}/serving.yaml with `active: <its "
            "version>` (docs/rulesets.md, Versions), then run this again\n"
        ),
    )


def test_a_home_without_a_pointer_needs_from(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No serving.yaml and no --from: there is no active version to copy; nothing created."""
    (home / "serving.yaml").unlink()
    assert _new_version(capsys, str(home), "--version", "2026.12.0") == (
        2,
        "",
        (
            f"caseroute: no serving.yaml in {home}, so no active version to copy: pass --from "
            "VERSION or point PATH at a ruleset's directory (rulesets/<name>)\n"
        ),
    )
    assert _entries(home) == [ACTIVE]


def test_from_copies_the_named_version_instead_of_the_active_one(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--from picks the source; the draft declares the new version and loads."""
    code, out, err = _new_version(capsys, str(home), "--version", "2026.12.0", "--from", ACTIVE)
    assert (code, out.splitlines()[0], err) == (
        0,
        f"created {home / '2026.12.0'} from {ACTIVE} (a draft: nothing serves it until activated)",
        "",
    )
    assert load_ruleset(home / "2026.12.0").version == "2026.12.0"


def test_a_missing_source_version_is_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--from naming a version that is not there: refused naming the file and the versions.

    Docs walk, finding 6: the versions there were not listed (now with the nearest one).
    """
    shutil.copytree(home / ACTIVE, home / "2026.12.1")
    assert _new_version(capsys, str(home), "--version", "2027.1.0", "--from", "2020.1.0") == (
        2,
        "",
        (
            f"caseroute: no version 2020.1.0 to copy: {home}/2020.1.0/ruleset.yaml is missing; "
            f"the versions in {home}: {ACTIVE}, 2026.12.1; pass one with --from\n"
        ),
    )
    assert _new_version(capsys, str(home), "--version", "2027.1.0", "--from", "2026.12") == (
        2,
        "",
        (
            f"caseroute: no version 2026.12 to copy: {home}/2026.12/ruleset.yaml is missing; "
            f"the versions in {home}: {ACTIVE}, 2026.12.1; pass one with --from (did you mean "
            "--from 2026.12.1?)\n"
        ),
    )
    assert _entries(home) == [ACTIVE, "2026.12.1", "serving.yaml"]


def test_a_missing_active_version_lists_the_versions_there(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """serving.yaml names a version with no directory: the refusal lists those that exist."""
    (home / "serving.yaml").write_text('active: "2026.11.9"\n')
    assert _new_version(capsys, str(home), "--version", "2027.1.0") == (
        2,
        "",
        (
            f"caseroute: no version 2026.11.9 to copy: {home}/2026.11.9/ruleset.yaml is missing; "
            f"the versions in {home}: {ACTIVE}; pass one with --from (did you mean --from "
            f"{ACTIVE}?)\n"
        ),
    )


@pytest.mark.parametrize("given", ["directory", "file", "dot"])
def test_a_version_directory_is_refused_naming_the_ruleset_directory_to_pass(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    """PATH = a version directory (or its file): pass the ruleset's directory; nothing created.

    Docs walk, finding 6: it was told to move its file down a level and write a serving.yaml
    inside it (a layout the server would misread).
    """
    version = home / ACTIVE
    path = {"directory": version, "file": version / "ruleset.yaml", "dot": Path()}[given]
    monkeypatch.chdir(version)
    what = "the file of a version" if given == "file" else "a version directory"
    parent = Path("..") if given == "dot" else home
    assert _new_version(capsys, str(path), "--version", "2027.1.0") == (
        2,
        "",
        (
            f"caseroute: {path} is {what} of ruleset patient-enquiries, not the ruleset's "
            f"directory: pass {parent} (add --from {ACTIVE} to copy this version rather than the "
            "active one)\n"
        ),
    )
    assert sorted(p.name for p in version.iterdir()) == ["golden", "ruleset.yaml"]
    assert _entries(home) == [ACTIVE, "serving.yaml"]


def test_a_directory_that_does_not_exist_is_said_to_be_missing_with_the_nearest(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Docs walk, finding 6: a misspelt PATH was told it had no serving.yaml, to pass --from."""
    typo, elsewhere = home.parent / "patient-enquirie", home.parent / "billing"
    assert [_new_version(capsys, str(p), "--version", "2027.1.0") for p in (typo, elsewhere)] == [
        (2, "", f"caseroute: no such directory: {typo} (did you mean {home}?)\n"),
        (2, "", f"caseroute: no such directory: {elsewhere}\n"),
    ]
    assert not typo.exists()


def test_a_pointer_file_given_as_path_is_refused_saying_what_to_pass(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PATH = serving.yaml (a file that is no version): pass the ruleset's directory."""
    assert _new_version(capsys, str(home / "serving.yaml"), "--version", "2027.1.0") == (
        2,
        "",
        (
            f"caseroute: {home / 'serving.yaml'} is a file: pass the ruleset's directory, "
            "rulesets/<name> (the one holding serving.yaml and a directory per version, each "
            "with its ruleset.yaml)\n"
        ),
    )


def test_from_outside_the_rulesets_directory_is_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--from ../other/V would copy another ruleset's version in: refused like --version."""
    shutil.copytree(home, home.parent / "other")
    source = f"../other/{ACTIVE}"
    assert _new_version(capsys, str(home), "--version", "2026.12.0", "--from", source) == (
        2,
        "",
        (
            f"caseroute: --from '{source}' is not a version: letters, digits, dots, dashes, + "
            f"and _, starting with a letter or digit (e.g. {ACTIVE})\n"
        ),
    )
    assert _entries(home) == [ACTIVE, "serving.yaml"]


def test_a_source_that_does_not_load_is_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The active version is broken: refused with the count and the check to run; no draft.

    `rulez:` for `rules:` is two problems (an unknown key, `rules` missing): it was three while
    a missing `rules` was also `rules.empty`.
    """
    path = home / ACTIVE / "ruleset.yaml"
    path.write_text(path.read_text().replace("rules:", "rulez:", 1))
    code, out, err = _new_version(capsys, str(home), "--version", "2026.12.0")
    assert (code, out, err.replace(str(home), "HOME")) == (
        2,
        "",
        (
            f"caseroute: version {ACTIVE} does not load (2 problem(s); run `caseroute rules check "
            f"HOME/{ACTIVE}`); copy a version that loads, with --from\n"
        ),
    )
    assert _entries(home) == [ACTIVE, "serving.yaml"]


def test_a_malformed_pointer_is_reported_with_file_and_line(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """serving.yaml naming no valid active version: the problem with file:line, no draft."""
    (home / "serving.yaml").write_text("active: 2026.11\n")
    code, out, err = _new_version(capsys, str(home), "--version", "2026.12.0")
    assert (code, out, err.splitlines()[1:]) == (
        1,
        "",
        [
            (
                f"  {home}/serving.yaml:1:9: error serving.value: `active` is the number "
                "2026.11 to YAML, not text (YAML reads an unquoted version such as 2026.10 as the "
                'number 2026.1): quote it as written, e.g. "2026.10"'
            ),
            (
                f"Fix {home}/serving.yaml at the line above (it names the version that serves), "
                f"then run `caseroute rules check {home}`."
            ),
        ],
    )
    assert _entries(home) == [ACTIVE, "serving.yaml"]


CANNOT_REWRITE = (
    'caseroute: could not set `version: "2026.12.0"` in the copy of {home}/'
    + ACTIVE
    + '/ruleset.yaml: write its version on one top-level line of its own, `version: "'
    + ACTIVE
    + '"`, then run this again\n'
)


def test_a_version_value_on_the_next_line_never_yields_a_broken_draft(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`version:` with its value on the next line: refused, not a draft that does not load."""
    _rewrite_version_line(home, f'version:\n  "{ACTIVE}"')
    assert load_ruleset(home / ACTIVE).version == ACTIVE  # valid YAML, a valid ruleset
    assert _new_version(capsys, str(home), "--version", "2026.12.0") == (
        2,
        "",
        CANNOT_REWRITE.format(home=home),
    )
    assert _entries(home) == [ACTIVE, "serving.yaml"]


def test_a_quoted_version_key_is_refused_with_what_to_write(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`"version": ...` loads but is not a line the command rewrites: it says what to write."""
    _rewrite_version_line(home, f'"version": "{ACTIVE}"')
    assert _new_version(capsys, str(home), "--version", "2026.12.0") == (
        2,
        "",
        CANNOT_REWRITE.format(home=home),
    )
    assert _entries(home) == [ACTIVE, "serving.yaml"]


def test_from_in_a_directory_of_no_versions_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--from in an empty directory: the refusal says it holds no version directory."""
    empty = tmp_path / "routing"
    empty.mkdir()
    assert _new_version(capsys, str(empty), "--version", "2", "--from", "1") == (
        2,
        "",
        (
            f"caseroute: no version 1 to copy: {empty}/1/ruleset.yaml is missing; {empty} holds "
            "no version directory (<version>/ruleset.yaml)\n"
        ),
    )


def test_a_missing_directory_under_an_unreadable_parent_is_said_without_a_guess(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No siblings to compare (the parent is not a directory): no did-you-mean, no traceback."""
    parent = tmp_path / "not-a-dir"
    parent.write_text("")
    missing = parent / "patient-enquiries"
    assert _new_version(capsys, str(missing), "--version", "2027.1.0") == (
        2,
        "",
        f"caseroute: no such directory: {missing}\n",
    )
