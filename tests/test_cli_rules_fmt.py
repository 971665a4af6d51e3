import json
import shutil
import stat
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.rules.fmt import format_text
from caseroute.rules.serving import parse_serving
from caseroute.testing import REFERENCE_RULESET
from tests.test_lifecycle_edges import _lifecycle, _serving, _version

SMALL = """\
ruleset: test
version: "1"
description: test ruleset
owner: tests
constraints:
  safeguarding: {flag: safeguarding, queue: safeguarding}
  licence: {clinical: [RN]}
rules:
  - id: safeguarding
    when: "'safeguarding' in case.flags"
    then: {escalate: {queue: safeguarding, reason: safeguarding_concern}}
  - id: rest
    when: true
    then: {exception: {queue: exceptions, reason: rest}}
"""
UNFORMATTED = SMALL.replace("owner: tests\n", "owner: tests   \n").replace(
    "when: \"'safeguarding' in case.flags\"", "when: '''safeguarding'' in case.flags'"
)


def _write(tmp_path: Path, text: str, name: str = "ruleset.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_check_on_the_reference_ruleset_passes_silently(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`rules fmt --check` on the shipped reference: already canonical, exit 0, no output."""
    assert (main(["rules", "fmt", "--check", str(REFERENCE_RULESET)]), capsys.readouterr().out) == (
        0,
        "",
    )


def test_check_lists_a_file_that_would_change_and_leaves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check: exit 1, names the file, writes nothing."""
    path = _write(tmp_path, UNFORMATTED)
    code = main(["rules", "fmt", "--check", str(path)])
    assert (code, capsys.readouterr().out, path.read_text()) == (
        1,
        f"{path}: would reformat\n",
        UNFORMATTED,
    )


def test_check_with_diff_prints_a_unified_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check --diff: the file name, then a unified diff of exactly the lines that change."""
    path = _write(tmp_path, UNFORMATTED)
    code = main(["rules", "fmt", "--check", "--diff", str(path)])
    expected = f"""\
{path}: would reformat
--- {path}
+++ {path} (formatted)
@@ -1,13 +1,13 @@
 ruleset: test
 version: "1"
 description: test ruleset
-owner: tests   \n\
+owner: tests
 constraints:
   safeguarding: {{flag: safeguarding, queue: safeguarding}}
   licence: {{clinical: [RN]}}
 rules:
   - id: safeguarding
-    when: '''safeguarding'' in case.flags'
+    when: "'safeguarding' in case.flags"
     then: {{escalate: {{queue: safeguarding, reason: safeguarding_concern}}}}
   - id: rest
     when: true
"""
    assert (code, capsys.readouterr().out) == (1, expected)


def test_without_check_rewrites_in_place_keeping_the_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --check the file gets the canonical text, its mode is kept, exit 0."""
    path = _write(tmp_path, UNFORMATTED)
    path.chmod(0o640)
    code = main(["rules", "fmt", str(path)])
    assert (
        code,
        capsys.readouterr().out,
        path.read_text(),
        stat.S_IMODE(path.stat().st_mode),
        sorted(p.name for p in tmp_path.iterdir()),
    ) == (0, f"{path}: reformatted\n", SMALL, 0o640, ["ruleset.yaml"])


def test_a_ruleset_directory_formats_its_ruleset_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory argument means its ruleset.yaml, as in `rules check`."""
    path = _write(tmp_path, UNFORMATTED)
    code = main(["rules", "fmt", str(tmp_path)])
    assert (code, capsys.readouterr().out, path.read_text()) == (
        0,
        f"{path}: reformatted\n",
        SMALL,
    )


def test_second_run_finds_nothing_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """After fmt, `fmt --check` passes: the command is idempotent end to end."""
    path = _write(tmp_path, UNFORMATTED)
    main(["rules", "fmt", str(path)])
    capsys.readouterr()
    assert (main(["rules", "fmt", "--check", str(path)]), capsys.readouterr().out) == (0, "")


def test_a_file_that_does_not_load_is_refused_with_its_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hostile YAML: every problem with file:line and code, exit 2, the file untouched."""
    hostile = SMALL.replace("owner: tests", "owner: &who tests\nx: *who")
    path = _write(tmp_path, hostile)
    code = main(["rules", "fmt", str(path)])
    out = capsys.readouterr().out
    assert (code, out.splitlines()[-1], path.read_text()) == (
        2,
        f"{path}: not formatted: fix the problems above and re-run",
        hostile,
    )
    assert [line.split(" ")[:3] for line in out.splitlines()[:-1]] == [
        [f"{path}:4:8:", "error", "yaml.anchor_not_allowed:"],
        [f"{path}:5:4:", "error", "yaml.anchor_not_allowed:"],
    ]


def test_a_refused_file_does_not_stop_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With several paths, a broken one is reported and the rest are still formatted (exit 2)."""
    broken = _write(tmp_path, "ruleset: [\n", "broken.yaml")
    good = _write(tmp_path, UNFORMATTED)
    code = main(["rules", "fmt", str(broken), str(good)])
    out = capsys.readouterr().out
    assert (code, out.splitlines()[-1], good.read_text()) == (
        2,
        f"{good}: reformatted",
        SMALL,
    )


def test_missing_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A path that does not exist: source.unreadable, exit 2."""
    path = tmp_path / "nope.yaml"
    code = main(["rules", "fmt", "--check", str(path)])
    assert (code, capsys.readouterr().out) == (
        2,
        (
            f"{path}: error source.unreadable: cannot read file: No such file or directory; "
            f"check the path\n{path}: not formatted: fix the problems above and re-run\n"
        ),
    )


def test_a_write_failure_is_reported_and_the_file_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rewrite that cannot be written says so, without exception text or a traceback."""
    from caseroute.rules import fmt

    path = _write(tmp_path, UNFORMATTED)

    def fail(*_: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(fmt, "write_atomically", fail)
    code = main(["rules", "fmt", str(path)])
    assert (code, capsys.readouterr().out, path.read_text()) == (
        2,
        f"{path}: cannot write the formatted file: Permission denied; the file is unchanged\n",
        UNFORMATTED,
    )


def test_reference_copy_formats_to_itself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Formatting a copy of the reference ruleset directory leaves it byte-identical."""
    copy = tmp_path / "patient-enquiries"
    shutil.copytree(REFERENCE_RULESET, copy)
    before = (copy / "ruleset.yaml").read_bytes()
    assert (main(["rules", "fmt", str(copy)]), (copy / "ruleset.yaml").read_bytes()) == (0, before)
    assert capsys.readouterr().out == ""


def test_small_fixture_is_canonical() -> None:
    """The expected output used above is itself the canonical layout."""
    assert format_text(SMALL, "small.yaml") == SMALL


def test_json_format_reports_each_path_for_ci(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--format json: one document with each path's status and problems, nothing else."""
    import json

    broken = _write(tmp_path, "ruleset: [\n", "broken.yaml")
    messy = _write(tmp_path, UNFORMATTED)
    code = main(
        [
            "rules",
            "fmt",
            "--check",
            "--format",
            "json",
            str(REFERENCE_RULESET),
            str(messy),
            str(broken),
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert (code, data["command"], data["check"], data["ok"]) == (2, "rules fmt", True, False)
    assert [
        (p["path"], p["status"], [q["code"] for q in p["problems"]]) for p in data["paths"]
    ] == [
        (str(REFERENCE_RULESET / "ruleset.yaml"), "unchanged", []),
        (str(messy), "would_reformat", []),
        (str(broken), "refused", ["yaml.syntax"]),
    ]


def test_a_published_version_is_left_alone_and_a_draft_beside_it_formatted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version serving.yaml names is not rewritten (exit 2); a draft beside it is.

    Review R32a F2: `rules fmt rulesets/<name>` rewrote the active version too, whose new
    content a restarted server then refused (no active version). --check still lists both.
    """
    home = tmp_path / "routing"
    text = REFERENCE_RULESET.joinpath("ruleset.yaml").read_text()
    messy = text.replace("description: ", "description:    ", 1)
    assert messy != text
    for version in ("1", "2"):
        (home / version).mkdir(parents=True)
        (home / version / "ruleset.yaml").write_text(messy)
    (home / "serving.yaml").write_text("active: '1'\n")
    assert main(["rules", "fmt", "--check", str(home)]) == 1
    assert capsys.readouterr().out.count("would reformat") == 2
    assert main(["rules", "fmt", str(home)]) == 2
    out = capsys.readouterr().out
    assert f"{home / '1' / 'ruleset.yaml'}: not formatted: this version is active in its " in out
    assert f"{home / '2' / 'ruleset.yaml'}: reformatted" in out
    assert (home / "1" / "ruleset.yaml").read_text() == messy
    assert (home / "2" / "ruleset.yaml").read_text() != messy


def test_a_version_rolled_back_from_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R34b F8: after a rollback the version rolled back from was named nowhere.

    It had served (and may have decided), yet `rules fmt` rewrote it. The rollback now keeps it
    under `retired:` in serving.yaml, and fmt leaves it alone.
    """
    rulesets = tmp_path / "rulesets"
    for version in ("1", "2"):
        _version(rulesets, "routing", version)
    draft = _version(rulesets, "routing", "3") / "ruleset.yaml"
    _serving(rulesets, "routing", "active: '1'\n")
    life = _lifecycle(rulesets)
    life.activate("routing", "2", "admin:amy")
    life.rollback("routing", "admin:amy")
    assert parse_serving(rulesets / "routing" / "serving.yaml").retired == ("2",)
    messy = {}
    for path in (rulesets / "routing" / "2" / "ruleset.yaml", draft):
        messy[path] = path.read_text().replace("owner:", "owner:   ", 1)
        path.write_text(messy[path])
    capsys.readouterr()
    assert main(["rules", "fmt", str(rulesets / "routing")]) == 2
    out = capsys.readouterr().out
    rolled_back = rulesets / "routing" / "2" / "ruleset.yaml"
    assert f"{rolled_back}: not formatted: this version is retired in its serving.yaml" in out
    assert rolled_back.read_text() == messy[rolled_back]
    assert draft.read_text() != messy[draft]  # a draft never served: formatted


def test_no_version_is_formatted_while_serving_yaml_does_not_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R34b F8: an unreadable serving.yaml made every version look unpublished.

    Which versions it names is unknown, so fmt refuses each (exit 2) with the pointer's own
    problems (file:line) and says to fix it.
    """
    home = tmp_path / "routing"
    path = _version(tmp_path, "routing", "1") / "ruleset.yaml"
    messy = path.read_text().replace("owner:", "owner:   ", 1)
    path.write_text(messy)
    pointer = _serving(tmp_path, "routing", "actve: '1'\n")
    assert main(["rules", "fmt", str(home)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{pointer}:1:1: error serving.unknown_key: unknown key `actve`")
    assert out[-1] == (
        f"{path}: not formatted: its serving.yaml does not read (above), so whether this "
        "version is published, and may have decided, is unknown; fix serving.yaml and re-run"
    )
    assert path.read_text() == messy
    assert main(["rules", "fmt", "--check", str(home)]) == 1  # --check still lists it


def _decided_sole_version(tmp_path: Path) -> tuple[Path, Path, str]:
    """A ruleset whose only version (no serving.yaml) has decided, its file then made messy.

    Returns:
        The rulesets directory, the decision log file and the version's messy text (the
        content it decided with, which a server keeps serving).
    """
    from caseroute.engine.case_rules import EngineKind
    from caseroute.lifecycle import RulesetLifecycle
    from caseroute.registry import RulesetRegistry
    from caseroute.service import DecideCommand, RoutingCore
    from caseroute.testing import NOW, audit_config, make_agent, make_case, make_roster

    rulesets = tmp_path / "rulesets"
    path = rulesets / "routing" / "1" / "ruleset.yaml"
    path.parent.mkdir(parents=True)
    messy = UNFORMATTED.replace("ruleset: test", "ruleset: routing")
    path.write_text(messy)
    config = audit_config(tmp_path / "audit")
    store = config.open_store()
    try:
        life = RulesetLifecycle(RulesetRegistry(), rulesets, EngineKind.PYTHON, audit=store)
        life.load()
        core = RoutingCore(life.registry, store, config.masker())
        core.decide(DecideCommand("req-1", "", "", (make_case(),), make_roster(make_agent()), NOW))
        assert life.registry.resolve("", "").compiled.version == "1"  # served, no pointer
    finally:
        store.close()
    return rulesets, config.db, messy


def test_a_sole_version_the_log_shows_decided_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review R32d F10: with no serving.yaml, fmt rewrote the version a server served.

    With --audit-db the log is asked: that version decided with this content, so it is refused
    (fmt.decided, exit 2) and a draft in another ruleset is still formatted.
    """
    monkeypatch.chdir(tmp_path)
    rulesets, db, messy = _decided_sole_version(tmp_path)
    draft = _write(tmp_path, UNFORMATTED, "draft.yaml")
    target = rulesets / "routing" / "1" / "ruleset.yaml"
    code = main(["rules", "fmt", "--audit-db", str(db), str(rulesets / "routing"), str(draft)])
    out = capsys.readouterr().out
    assert (code, target.read_text(), draft.read_text() != UNFORMATTED) == (2, messy, True)
    assert (
        f"{target}: not formatted: the decision log ({db}) holds decisions of ruleset routing "
        "version 1 made with this file as it is" in out
    )
    assert f"{draft}: reformatted" in out
    code = main(["rules", "fmt", "--format", "json", "--audit-db", str(db), str(target)])
    (report,) = json.loads(capsys.readouterr().out)["paths"]
    assert (code, report["status"], [p["code"] for p in report["problems"]]) == (
        2,
        "decided",
        ["fmt.decided"],
    )


def test_the_default_log_is_asked_when_its_file_is_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run where the server runs (its var/audit.db beside), fmt asks that log unprompted."""
    monkeypatch.delenv("CASEROUTE_AUDIT_DB", raising=False)
    rulesets, db, messy = _decided_sole_version(tmp_path)
    (tmp_path / "var").mkdir()
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{db}{suffix}").exists():
            shutil.copy(f"{db}{suffix}", tmp_path / "var" / f"audit.db{suffix}")
    monkeypatch.chdir(tmp_path)
    target = rulesets / "routing" / "1" / "ruleset.yaml"
    assert (main(["rules", "fmt", str(target)]), target.read_text()) == (2, messy)
    assert "fmt.decided" not in capsys.readouterr().out  # the text form says it in words


def test_without_a_log_a_pointerless_version_is_formatted_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No log set and none at the default place: formatted, and stderr says it was not asked.

    A draft beside a serving.yaml gets no note: the pointer says what is published.
    """
    monkeypatch.delenv("CASEROUTE_AUDIT_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "solo"
    (home / "1").mkdir(parents=True)
    (home / "1" / "ruleset.yaml").write_text(UNFORMATTED)
    assert main(["rules", "fmt", str(home)]) == 0
    err = capsys.readouterr().err
    assert (home / "1" / "ruleset.yaml").read_text() != UNFORMATTED
    assert err == (
        "caseroute: note: 1 file(s) formatted without asking a decision log whether they "
        "have decided (none at var/audit.db); a server serves a ruleset with no serving.yaml "
        "as it is, so if one serves these, pass --audit-db so that `rules fmt` refuses a "
        "version that has decided\n"
    )
    (home / "2").mkdir()
    (home / "2" / "ruleset.yaml").write_text(UNFORMATTED)
    (home / "serving.yaml").write_text("active: '1'\n")
    assert (main(["rules", "fmt", str(home / "2")]), capsys.readouterr().err) == (0, "")


def test_a_named_log_that_is_missing_is_a_usage_error_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--audit-db names a file that is not there: exit 2 naming it; the file is unchanged."""
    path = _write(tmp_path, UNFORMATTED)
    missing = tmp_path / "nowhere" / "audit.db"
    assert (main(["rules", "fmt", "--audit-db", str(missing), str(path)]), path.read_text()) == (
        2,
        UNFORMATTED,
    )
    assert f"no decision log at {missing}; pass --audit-db" in capsys.readouterr().err


def test_a_named_file_that_is_no_decision_log_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--audit-db naming some other file: exit 2 saying it is not a log; nothing written."""
    path = _write(tmp_path, UNFORMATTED)
    other = tmp_path / "notes.db"
    other.write_text("not a database\n" * 300)
    other.chmod(0o600)
    assert (main(["rules", "fmt", "--audit-db", str(other), str(path)]), path.read_text()) == (
        2,
        UNFORMATTED,
    )
    assert f"cannot open the decision log {other}: file is not a database" in (
        capsys.readouterr().err
    )


def test_a_log_whose_decisions_cannot_be_read_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log opens but its decisions do not read: exit 2 naming the file; nothing written."""
    import sqlite3

    monkeypatch.chdir(tmp_path)
    rulesets, db, messy = _decided_sole_version(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE decisions RENAME TO decisions_gone")
    target = rulesets / "routing" / "1" / "ruleset.yaml"
    assert (main(["rules", "fmt", "--audit-db", str(db), str(target)]), target.read_text()) == (
        2,
        messy,
    )
    assert (
        f"cannot read the decision log {db} to learn whether {target} has decided; check that "
        "--audit-db names a caseroute decision log this user can read"
    ) in capsys.readouterr().err


def test_a_formatter_bug_is_reported_per_path_and_the_others_still_formatted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug met formatting one file: fmt.internal there, no traceback; the next is formatted."""
    from caseroute.rules import fmt

    broken, fine = _write(tmp_path, UNFORMATTED, "a.yaml"), _write(tmp_path, UNFORMATTED, "b.yaml")
    real = fmt.format_file

    def format_file(path: Path) -> tuple[str, str]:
        if path == broken:
            raise RuntimeError("boom /secret/path")
        return real(path)

    monkeypatch.setattr(fmt, "format_file", format_file)
    assert main(["rules", "fmt", "--format", "json", str(broken), str(fine)]) == 2
    captured = capsys.readouterr()
    first, second = json.loads(captured.out)["paths"]
    assert (first["status"], [p["code"] for p in first["problems"]]) == (
        "refused",
        ["fmt.internal"],
    )
    assert "boom" not in first["problems"][0]["message"]
    assert (second["status"], fine.read_text() != UNFORMATTED) == ("reformatted", True)
