"""The pointer file (serving.yaml) and the on-disk layout of versions: every refusal and edge."""

from __future__ import annotations

from pathlib import Path

import pytest

from caseroute.domain.errors import Problem, RulesetError
from caseroute.rules.layout import (
    Layout,
    VersionSource,
    active_source,
    check_placement,
    discover,
    expand_sources,
    expand_version_sources,
    key_line,
    placed_source,
    version_home,
)
from caseroute.rules.serving import (
    MAX_PREVIOUS,
    MAX_RETIRED,
    Serving,
    parse_serving,
    render_serving,
    write_atomically,
    write_serving,
)
from caseroute.testing import CATCH_ALL_RULE, ruleset_with_rules


def _pointer(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "serving.yaml"
    path.write_text(text)
    return path


def _problems(path: Path) -> list[tuple[str, str, int, int]]:
    with pytest.raises(RulesetError) as exc:
        parse_serving(path)
    return [(p.code, p.message, p.line, p.column) for p in exc.value.problems]


def _version(home: Path, version: str, name: str = "routing") -> Path:
    path = home / version / "ruleset.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        ruleset_with_rules(CATCH_ALL_RULE)
        .replace("ruleset: test\n", f"ruleset: {name}\n")
        .replace('version: "1"\n', f'version: "{version}"\n')
    )
    return path.parent


# -- Serving transitions ---------------------------------------------------------------------


def test_activating_the_active_version_changes_nothing() -> None:
    """Activating what is already active keeps the history as it is (no self in `previous`)."""
    serving = Serving("2", "3", ("1",))
    assert serving.activated("2") is serving


def test_activating_the_shadow_version_ends_the_shadow() -> None:
    """A shadow promoted to active is no longer shadowed; the old active joins `previous`."""
    assert Serving("2", "3", ("1",), "p").activated("3") == Serving("3", None, ("1", "2"), "p")


def test_previous_keeps_only_the_most_recent_versions() -> None:
    """History is capped at MAX_PREVIOUS, dropping the oldest."""
    old = tuple(f"v{n}" for n in range(MAX_PREVIOUS))
    assert Serving("now", None, old).activated("next").previous == (*old[1:], "now")


def test_rolling_back_to_the_shadow_version_ends_the_shadow() -> None:
    """Rollback to a version that was shadowing: it serves, and no longer shadows itself."""
    assert Serving("2", "1", ("0", "1")).rolled_back() == Serving("1", None, ("0",), retired=("2",))


def test_rolling_back_keeps_a_different_shadow() -> None:
    """Rollback leaves a shadow that is not the rollback target in place."""
    assert Serving("2", "3", ("1",)).rolled_back() == Serving("1", "3", (), retired=("2",))


# -- parse_serving refusals ------------------------------------------------------------------


def test_a_pointer_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    """A list instead of `active:` is one serving.type problem at line 1."""
    assert _problems(_pointer(tmp_path, "- '1'\n")) == [
        (
            "serving.type",
            (
                "a serving file is a mapping with `active:` (and optionally `shadow:`, "
                "`previous:` and `retired:`); see docs/rulesets.md"
            ),
            1,
            1,
        )
    ]


NUMBER_ADVICE = (
    "to YAML, not text (YAML reads an unquoted version such as 2026.10 as the number 2026.1): "
    'quote it as written, e.g. "2026.10"'
)
"""What follows "`<key>` is the number <n>" for a version YAML read as a number (the wording
``ruleset.yaml``'s ``version:`` shares)."""


def test_an_unquoted_version_read_as_a_number_is_refused(tmp_path: Path) -> None:
    """`active: 1.10` is the float 1.1 to YAML: refused, not silently served as version 1.1."""
    assert _problems(_pointer(tmp_path, "active: 1.10\n")) == [
        ("serving.value", f"`active` is the number 1.1 {NUMBER_ADVICE}", 1, 9)
    ]


def test_a_version_with_surrounding_whitespace_is_refused_naming_the_whitespace(
    tmp_path: Path,
) -> None:
    """Docs walk, finding 10: `shadow: "2027.01.0 "` was told to quote it if YAML read a number."""
    assert _problems(_pointer(tmp_path, 'active: "1"\nshadow: "2027.01.0 "\n')) == [
        (
            "serving.value",
            (
                "`shadow` must not start or end with whitespace; got '2027.01.0 ': write "
                '"2027.01.0"'
            ),
            2,
            9,
        )
    ]


def test_a_version_that_is_neither_a_number_nor_text_says_what_it_is(tmp_path: Path) -> None:
    """`active: [1]` names a list (it printed the parser's node objects), and no quoting advice."""
    assert _problems(_pointer(tmp_path, "active: [1]\n")) == [
        ("serving.value", "`active` must be a non-empty string, got a list", 1, 9)
    ]


def test_a_misspelt_active_key_is_one_problem_with_a_did_you_mean(tmp_path: Path) -> None:
    """Review R34b F4: `Active:`/`actve:` also gave missing_active, and no did-you-mean."""
    assert [_problems(_pointer(tmp_path, f"{key}: '1'\n")) for key in ("Active", "actve")] == [
        [
            (
                "serving.unknown_key",
                (
                    f"unknown key `{key}` (did you mean `active`?); a serving file has only "
                    "active, shadow, previous, retired"
                ),
                1,
                1,
            )
        ]
        for key in ("Active", "actve")
    ]


def test_an_unknown_key_and_no_active_are_both_reported(tmp_path: Path) -> None:
    """`zzz:` is no near spelling of `active`: unknown, and no active version either."""
    assert _problems(_pointer(tmp_path, "zzz: '1'\n")) == [
        (
            "serving.unknown_key",
            "unknown key `zzz`; a serving file has only active, shadow, previous, retired",
            1,
            1,
        ),
        (
            "serving.missing_active",
            (
                "no `active:` version: name the version unpinned requests get, e.g. "
                "`active: 2025.06.0`"
            ),
            1,
            1,
        ),
    ]


def test_a_duplicate_active_key_is_refused(tmp_path: Path) -> None:
    """Two `active:` lines never let YAML pick one silently."""
    assert _problems(_pointer(tmp_path, "active: '1'\nactive: '2'\n")) == [
        (
            "yaml.duplicate_key",
            (
                "key `active` appears twice in the same mapping; YAML would silently keep only "
                "one. Remove or rename one of them"
            ),
            2,
            1,
        )
    ]


def test_previous_that_is_not_a_list_is_refused(tmp_path: Path) -> None:
    """`previous: '0'` is a serving.type problem at its value."""
    assert _problems(_pointer(tmp_path, "active: '1'\nprevious: '0'\n")) == [
        (
            "serving.type",
            "`previous` is a list of versions, most recent last, e.g. [2025.05.0]",
            2,
            11,
        )
    ]


def test_every_bad_previous_entry_is_reported(tmp_path: Path) -> None:
    """Each invalid entry of `previous` (a number, a path) is its own problem, with its column."""
    text = "active: '1'\nprevious: ['0', 2.0, '../x']\n"
    assert _problems(_pointer(tmp_path, text)) == [
        ("serving.value", f"`previous` is the number 2.0 {NUMBER_ADVICE}", 2, 17),
        (
            "serving.value",
            (
                "`previous` '../x' is not a valid version (letters, digits and . _ + -, "
                "starting with a letter or digit, e.g. 2026.11.1)"
            ),
            2,
            22,
        ),
    ]


def test_an_oversized_pointer_is_refused_before_parsing(tmp_path: Path) -> None:
    """A pointer over 16 KiB is one limit.file_size problem about the whole file."""
    assert _problems(_pointer(tmp_path, "#" * 17000)) == [
        (
            "limit.file_size",
            (
                "file is 17000 bytes; the limit is 16384 bytes. Split it, or remove what it does "
                "not need"
            ),
            0,
            0,
        )
    ]


def test_an_empty_shadow_means_no_shadow(tmp_path: Path) -> None:
    """`shadow:` with no value is no shadow, not an error."""
    path = _pointer(tmp_path, "active: '1'\nshadow:\nprevious:\n")
    assert (parse_serving(path).active, parse_serving(path).shadow) == ("1", None)


# -- writing ---------------------------------------------------------------------------------


def test_a_written_pointer_reads_back_as_written(tmp_path: Path) -> None:
    """write_serving's text (quoted versions, shadow, previous) parses back to the same choice."""
    path = tmp_path / "routing" / "serving.yaml"
    write_serving(path, "routing", Serving("1.10", "2", ("0.9", "1.0")))
    serving = parse_serving(path)
    assert (serving.active, serving.shadow, serving.previous, serving.shadow_line) == (
        "1.10",
        "2",
        ("0.9", "1.0"),
        4,
    )
    assert path.read_text() == render_serving("routing", Serving("1.10", "2", ("0.9", "1.0")))
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_a_failed_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A directory where the pointer belongs: OSError, the directory untouched, no temp left."""
    (tmp_path / "serving.yaml").mkdir()
    with pytest.raises(IsADirectoryError):
        write_atomically(tmp_path / "serving.yaml", "active: '1'\n")
    assert [p.name for p in tmp_path.iterdir()] == ["serving.yaml"]
    assert (tmp_path / "serving.yaml").is_dir()


# -- layout ----------------------------------------------------------------------------------


def test_discover_of_a_missing_directory_finds_nothing(tmp_path: Path) -> None:
    """A path that cannot be listed contributes no source and no pointer."""
    assert discover(tmp_path / "missing") == Layout((), {})


def test_discover_of_a_file_is_that_file(tmp_path: Path) -> None:
    """A single ruleset file is the one source, with no name or version directory."""
    path = _version(tmp_path, "1") / "ruleset.yaml"
    assert discover(path) == Layout((VersionSource(path),), {})


def test_discover_skips_hidden_directories(tmp_path: Path) -> None:
    """A half-copied `.2.new` staging directory is never a version."""
    home = tmp_path / "routing"
    _version(home, "1")
    _version(home, ".2.new")
    (home / "serving.yaml").write_text("active: '1'\n")
    assert discover(home) == Layout(
        (VersionSource(home / "1", "routing", "1"),), {"routing": home / "serving.yaml"}
    )


def test_key_line_of_a_missing_key_is_line_1() -> None:
    """A key that is not at top level points at line 1 (the file), never at line 0."""
    assert (key_line("ruleset: a\n  version: x\nversion: 2\n", "version"), key_line("", "x")) == (
        3,
        1,
    )


def test_a_version_under_another_rulesets_directory_is_misplaced(tmp_path: Path) -> None:
    """A file declaring ruleset `other` under routing/ names both and says where it belongs.

    At the `ruleset:` line (review R34b F5: line 1, whatever the file).
    """
    source = VersionSource(_version(tmp_path / "routing", "2", name="other"), "routing", "2")
    text = "# a comment\n\nruleset: other\nversion: '2'\n"
    assert check_placement(source, "other", "2", text) == [
        Problem(
            "versions.misplaced",
            "this file declares ruleset `other` but sits under `routing/`: a version lives in "
            "rulesets/<name>/<version>/; move it to other/2/ or fix `ruleset:`",
            str(tmp_path / "routing" / "2" / "ruleset.yaml"),
            3,
        )
    ]


def test_active_source_follows_the_pointer_only_for_a_home(tmp_path: Path) -> None:
    """A home resolves to its active version; a version directory or file is itself."""
    home = tmp_path / "routing"
    one = _version(home, "1")
    _version(home, "2")
    (home / "serving.yaml").write_text("active: '1'\n")
    assert (active_source(home), active_source(one), active_source(one / "ruleset.yaml")) == (
        home / "1",
        one,
        one / "ruleset.yaml",
    )


def test_active_source_refuses_a_malformed_pointer(tmp_path: Path) -> None:
    """A home whose pointer is malformed is an error, never a guess at the version."""
    home = tmp_path / "routing"
    _version(home, "1")
    (home / "serving.yaml").write_text("active: [1]\n")
    with pytest.raises(RulesetError) as exc:
        active_source(home)
    assert [(p.code, p.line) for p in exc.value.problems] == [("serving.value", 1)]


def test_expand_sources_of_a_file_or_an_empty_directory_is_itself(tmp_path: Path) -> None:
    """A file is itself; a directory with no version is returned so the command names it."""
    path = _version(tmp_path / "routing", "1") / "ruleset.yaml"
    (tmp_path / "empty").mkdir()
    assert (expand_sources(path), expand_sources(tmp_path / "empty")) == (
        [path],
        [tmp_path / "empty"],
    )


def test_expand_sources_of_a_rulesets_directory_lists_every_version(tmp_path: Path) -> None:
    """Flat rulesets and versioned homes under one directory are all listed, in path order."""
    _version(tmp_path / "routing", "1")
    _version(tmp_path / "routing", "2")
    flat = tmp_path / "triage" / "ruleset.yaml"
    flat.parent.mkdir()
    flat.write_text((tmp_path / "routing" / "1" / "ruleset.yaml").read_text())
    assert expand_sources(tmp_path) == [
        tmp_path / "routing" / "1",
        tmp_path / "routing" / "2",
        tmp_path / "triage",
    ]


def test_a_version_directory_given_on_its_own_is_placed_in_its_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory, its file, and `.` inside it carry the names a server checks them against.

    Docs walk, finding 3: they were flat, so a misplaced version passed `rules check` on its own.
    """
    home = tmp_path / "routing"
    two = _version(home, "2", name="other")  # placed by the pointer, whatever it declares
    (home / "serving.yaml").write_text("active: '2'\n")
    monkeypatch.chdir(two)
    placed = [placed_source(p) for p in (two, two / "ruleset.yaml", Path(), Path("ruleset.yaml"))]
    assert placed == [
        VersionSource(two, "routing", "2"),
        VersionSource(two / "ruleset.yaml", "routing", "2"),
        VersionSource(Path(), "routing", "2"),
        VersionSource(Path("ruleset.yaml"), "routing", "2"),
    ]
    assert expand_version_sources(two) == [VersionSource(two, "routing", "2")]
    assert [version_home(p) for p in (two, Path(), Path("ruleset.yaml"))] == [
        home,
        Path(".."),
        Path(".."),
    ]


def test_a_version_of_a_home_without_a_pointer_is_placed_by_its_declared_name(
    tmp_path: Path,
) -> None:
    """No serving.yaml: a file declaring its parent's name is a version there.

    As R32d F9 reads a home; a flat ruleset of a rulesets directory, or another file name, stays
    flat.
    """
    one = _version(tmp_path / "routing", "1")
    flat = _version(tmp_path, "triage")  # rulesets/triage/ruleset.yaml declares `routing`
    other = flat / "r.yaml"
    other.write_text((flat / "ruleset.yaml").read_text())
    assert [placed_source(p) for p in (one, flat, other, tmp_path / "missing")] == [
        VersionSource(one, "routing", "1"),
        VersionSource(flat),
        VersionSource(other),
        VersionSource(tmp_path / "missing"),
    ]
    assert [version_home(p) for p in (one, flat, other)] == [tmp_path / "routing", None, None]


# -- retired: versions that served and left the pointer (review R34b F8) ----------------------


def test_a_rollback_retires_the_version_it_leaves() -> None:
    """The active version a rollback leaves is named under `retired`, most recent last."""
    pointer = Serving("3", None, ("1", "2"), retired=("0",))
    assert pointer.rolled_back().rolled_back() == Serving("1", None, (), retired=("0", "3", "2"))


def test_a_version_previous_forgets_is_retired() -> None:
    """Past MAX_PREVIOUS the oldest previous version is retired, not forgotten."""
    old = tuple(f"v{n}" for n in range(MAX_PREVIOUS))
    assert Serving("now", None, old).activated("next").retired == ("v0",)


def test_activating_a_retired_version_takes_it_out_of_retired() -> None:
    """A version named active again is no longer retired; the rest keep their order."""
    pointer = Serving("1", None, (), retired=("2", "3"))
    assert pointer.activated("2") == Serving("2", None, ("1",), retired=("3",))


def test_retired_keeps_the_most_recent_versions() -> None:
    """At most MAX_RETIRED are kept, dropping the oldest."""
    retired = tuple(f"v{n}" for n in range(MAX_RETIRED))
    assert Serving("2", None, ("1",), retired=retired).rolled_back().retired == (
        *retired[1:],
        "2",
    )


def test_retired_reads_back_as_written(tmp_path: Path) -> None:
    """render_serving writes `retired:` and parse_serving reads the same pointer back."""
    pointer = Serving("1.10", "2", ("0.9",), retired=("1.0", "3"))
    path = _pointer(tmp_path, render_serving("routing", pointer))
    read = parse_serving(path)
    assert (read.active, read.shadow, read.previous, read.retired) == (
        "1.10",
        "2",
        ("0.9",),
        ("1.0", "3"),
    )


def test_a_retired_that_is_not_a_list_is_refused(tmp_path: Path) -> None:
    """`retired: 2` is one serving.type problem at its line."""
    assert _problems(_pointer(tmp_path, "active: '1'\nretired: 2\n")) == [
        (
            "serving.type",
            "`retired` is a list of versions, most recent last, e.g. [2025.05.0]",
            2,
            10,
        )
    ]
