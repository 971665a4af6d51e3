"""`caseroute rules check --roster/--strict/--format json` and `rules test --format json`."""

import json
import shutil
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.rules.compiler import load_ruleset
from caseroute.rules.model import CompiledRuleset
from caseroute.testing import CATCH_ALL_RULE, REFERENCE_HOME, ruleset_with_rules
from tests.rules.lint_texts import NO_LICENCE

# Pinned to 2026.11.1: these tests are about roster findings, and find their lines by the way
# that version writes its licences (later versions write those routes as blocks).
REFERENCE_RULESET = REFERENCE_HOME / "2026.11.1"
RULESET_YAML = REFERENCE_RULESET / "ruleset.yaml"
# One senior RN with triage 4: meets every reference requirement except the pharmacist licence.
AGENT: dict[str, object] = {
    "agent_id": "nurse-1",
    "role": "senior",
    "status": "offline",
    "licences": [{"type": "RN", "jurisdiction": "US-TX", "expires_on": "2027-01-31"}],
    "territories": ["US-TX"],
    "skills": [{"name": "clinical-triage", "level": 4}],
    "languages": ["en"],
    "capacity": {"max": 5, "active": 5},
}
ROSTER = {"snapshot_id": "s1", "taken_at": "2026-11-21T09:00:00Z", "agents": [AGENT]}
LICENCE_MESSAGE = (
    "no agent on roster.json holds an unexpired {type} licence on {day} (required by its "
    "licence: within constraints.licence.{intent}), so rule `{rule}` can never assign anyone; "
    "add one, or check the licence type"
)
PHARMACIST_MESSAGE = LICENCE_MESSAGE.replace("{type}", "pharmacist").format(
    day="{day}", intent="prescription", rule="prescription"
)


def reference_compiled() -> CompiledRuleset:
    """The pinned reference version, compiled."""
    return load_ruleset(REFERENCE_RULESET)


def _line_of(path: Path, text: str) -> int:
    """1-based number of the first line of ``path`` that contains ``text``."""
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines) if text in line) + 1


def _roster_file(tmp_path: Path, data: object = ROSTER) -> Path:
    path = tmp_path / "roster.json"
    path.write_text(json.dumps(data))
    return path


def _at(marker: str, token: str) -> tuple[int, int]:
    """Line and column of ``token`` on the first line of the reference holding ``marker``."""
    line = _line_of(RULESET_YAML, marker)
    return line, RULESET_YAML.read_text().splitlines()[line - 1].index(token) + 1


def _pharmacist_at() -> tuple[int, int]:
    return _at("licence: [pharmacist]}", "[pharmacist]")


def _rn_finding(rule: str, at: tuple[int, int]) -> dict[str, object]:
    """The JSON of an RN finding in the reference ruleset when nobody's RN is valid."""
    return {
        "code": "roster.unsatisfiable_licence",
        "severity": "warning",
        "file": str(RULESET_YAML),
        "line": at[0],
        "column": at[1],
        "rule_id": rule,
        "message": LICENCE_MESSAGE.format(
            type="RN", day="2027-02-01", intent="clinical", rule=rule
        ),
    }


def test_roster_findings_are_warnings_by_default(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Nobody holds a pharmacist licence: one warning at the rule's licence:, exit 0."""
    roster = _roster_file(tmp_path)
    assert main(["rules", "check", str(REFERENCE_RULESET), "--roster", str(roster)]) == 0
    line, column = _pharmacist_at()
    compiled = reference_compiled()
    assert capsys.readouterr().out.splitlines() == [
        (
            f"{RULESET_YAML}:{line}:{column}: warning roster.unsatisfiable_licence "
            f"[rule prescription]: {PHARMACIST_MESSAGE.format(day='2026-11-21')}"
        ),
        (
            f"{REFERENCE_RULESET}: ok - patient-enquiries version 2026.11.1, 7 rules, "
            f"8 conditions, sha256 {compiled.sha256}; 1 warning(s)"
        ),
    ]


def test_strict_makes_roster_findings_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--strict: the same finding is an error and the check exits 1."""
    roster = _roster_file(tmp_path)
    args = ["rules", "check", str(REFERENCE_RULESET), "--roster", str(roster), "--strict"]
    assert main(args) == 1
    line, column = _pharmacist_at()
    assert capsys.readouterr().out.splitlines() == [
        (
            f"{RULESET_YAML}:{line}:{column}: error roster.unsatisfiable_licence "
            f"[rule prescription]: {PHARMACIST_MESSAGE.format(day='2026-11-21')}"
        ),
        (
            f"{REFERENCE_RULESET}: 1 error(s), 0 warning(s) - patient-enquiries version 2026.11.1, "
            f"7 rules, 8 conditions, sha256 {reference_compiled().sha256}"
        ),
    ]


def test_format_json_reports_every_path_with_its_problems(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """One JSON document: per path name, version, sha256, ok and problems; --now sets the day."""
    roster = _roster_file(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text(RULESET_YAML.read_text().replace("case.urgency ==", "case.urgncy =="))
    bad_line = _line_of(broken, "case.urgncy")
    args = ["rules", "check", str(REFERENCE_RULESET), str(broken), "--roster", str(roster)]
    assert main([*args, "--format", "json", "--now", "2027-02-01T00:00:00Z"]) == 1
    line, column = _pharmacist_at()
    expected = {
        "command": "rules check",
        "ok": False,
        "roster": str(roster),
        "day": "2027-02-01",
        "paths": [
            {
                "path": str(REFERENCE_RULESET),
                "name": "patient-enquiries",
                "version": "2026.11.1",
                "sha256": reference_compiled().sha256,
                "ok": True,
                "problems": [
                    _rn_finding("critical-clinical", _at("licence: [RN]", "[RN]")),
                    _rn_finding("clinical", _at("licence: [RN]}", "[RN]")),
                    {
                        "code": "roster.unsatisfiable_licence",
                        "severity": "warning",
                        "file": str(RULESET_YAML),
                        "line": line,
                        "column": column,
                        "rule_id": "prescription",
                        "message": PHARMACIST_MESSAGE.format(day="2027-02-01"),
                    },
                ],
            },
            {
                "path": str(broken),
                "name": None,
                "version": None,
                "sha256": None,
                "ok": False,
                "problems": [
                    {
                        "code": "expr.unknown_field",
                        "severity": "error",
                        "file": str(broken),
                        "line": bad_line,
                        "column": 41,
                        "rule_id": "critical-clinical",
                        "message": "unknown field `case.urgncy` (did you mean `case.urgency`?)",
                    }
                ],
            },
        ],
    }
    assert expected == json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("flag", [["--now", "2026-11-21T00:00:00Z"], ["--strict"]])
def test_roster_options_without_a_roster_are_usage_errors(
    flag: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """--now and --strict only mean something with --roster: exit 2 saying so."""
    assert main(["rules", "check", str(REFERENCE_RULESET), *flag]) == 2
    assert capsys.readouterr().err == (
        f"caseroute: {flag[0]} applies to the roster check; add --roster ROSTER.json\n"
    )


def test_an_invalid_roster_names_the_file_and_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A roster that does not parse is exit 2 naming the file and each field path."""
    agent = {**AGENT, "capacity": {"max": "five", "active": 0}}
    roster = _roster_file(tmp_path, {**ROSTER, "agents": [agent]})
    assert main(["rules", "check", str(REFERENCE_RULESET), "--roster", str(roster)]) == 2
    assert capsys.readouterr().err == (
        f"caseroute: {roster} is not a valid roster (1 problem(s)); fix it and re-run:\n"
        "  - roster.agents[0].capacity.max: must be an integer, got string 'five'\n"
    )


def test_a_duplicate_key_in_the_roster_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The roster is read strictly: a repeated key is exit 2, not a silently dropped value."""
    roster = tmp_path / "roster.json"
    roster.write_text('{"snapshot_id": "a", "snapshot_id": "b"}')
    assert main(["rules", "check", str(REFERENCE_RULESET), "--roster", str(roster)]) == 2
    assert "roster.snapshot_id: duplicate key in " + str(roster) in capsys.readouterr().err


GOLDEN = """\
now: "2026-11-21T10:00:00Z"
roster: {snapshot_id: s1, taken_at: "2026-11-21T09:00:00Z", agents: []}
cases:
  - name: general-queues
    case: {case_id: G1, created_at: "2026-11-21T09:00:00Z", channel: phone, intent: general,
           urgency: routine, region: US-TX}
    expect: {outcome: QUEUE, rule: rest}
  - name: wrongly-expects-escalate
    case: {case_id: G2, created_at: "2026-11-21T09:00:00Z", channel: phone, intent: general,
           urgency: routine, region: US-TX}
    expect: {outcome: ESCALATE, rule: rest}
"""


def test_rules_test_format_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`rules test --format json`: cases with mismatches, coverage, counts; exit 1 on failure."""
    (tmp_path / "ruleset.yaml").write_text(ruleset_with_rules(CATCH_ALL_RULE))
    (tmp_path / "golden").mkdir()
    golden = tmp_path / "golden" / "g.yaml"
    golden.write_text(GOLDEN)
    args = ["rules", "test", str(tmp_path), "--engine", "python", "--format", "json"]
    assert main(args) == 1
    document = json.loads(capsys.readouterr().out)
    sha256 = document["paths"][0]["sha256"]
    assert len(sha256) == 64
    assert {
        "command": "rules test",
        "ok": False,
        "paths": [
            {
                "path": str(tmp_path),
                "name": "test",
                "version": "1",
                "sha256": sha256,
                "ok": False,
                "passed": 1,
                "failed": 1,
                "problems": [],
                "cases": [
                    {
                        "name": "general-queues",
                        "location": f"{golden}:4",
                        "passed": True,
                        "mismatches": [],
                    },
                    {
                        "name": "wrongly-expects-escalate",
                        "location": f"{golden}:8",
                        "passed": False,
                        "mismatches": ["outcome: expected 'ESCALATE', got 'QUEUE'"],
                    },
                ],
                "coverage": [
                    {"rule_id": "safeguarding", "decided": 0, "not_fired": 2, "gap": True},
                    {"rule_id": "rest", "decided": 2, "not_fired": 0, "gap": True},
                ],
            }
        ],
    } == document


def test_rules_test_format_json_reports_a_ruleset_that_does_not_load(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A broken ruleset under `rules test --format json` is a JSON document with its problems."""
    (tmp_path / "ruleset.yaml").write_text(
        ruleset_with_rules(CATCH_ALL_RULE).replace("owner", "ownr")
    )
    assert main(["rules", "test", str(tmp_path), "--format", "json"]) == 1
    file = str(tmp_path / "ruleset.yaml")
    assert {
        "command": "rules test",
        "ok": False,
        "paths": [
            {
                "path": str(tmp_path),
                "name": None,
                "version": None,
                "sha256": None,
                "ok": False,
                "problems": [
                    {  # one finding: `owner` is not also "required" (it was misspelt)
                        "code": "schema.unknown_key",
                        "severity": "error",
                        "file": file,
                        "line": 4,
                        "column": 1,
                        "rule_id": None,
                        "golden_case": None,
                        "message": (
                            "unknown field `ownr` in the ruleset file (did you mean `owner`?)"
                        ),
                    },
                    {
                        "code": "lint.no_consent",
                        "severity": "warning",
                        "file": file,
                        "line": 6,
                        "column": 0,
                        "rule_id": None,
                        "golden_case": None,
                        "message": (
                            "no consent constraint: a case flagged consent_missing goes to the "
                            "exceptions queue instead of queueing for consent; add `consent: "
                            "{flag: consent_missing}` under `constraints`"
                        ),
                    },
                    {
                        "code": "lint.no_licence",
                        "severity": "warning",
                        "file": file,
                        "line": 6,
                        "column": 0,
                        "rule_id": None,
                        "golden_case": None,
                        "message": NO_LICENCE,
                    },
                ],
            }
        ],
    } == json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("layout", "code", "where"),
    [
        ("active names a version that is not there", "versions.not_loaded", "serving.yaml:1"),
        ("a misspelt key", "serving.unknown_key", "serving.yaml:1:1"),
        ("a version in a directory of another name", "versions.misplaced", "ruleset.yaml:8"),
        ("two versions and no serving.yaml", "versions.no_active", "patient-enquiries"),
    ],
)
def test_rules_check_reads_the_layout_a_server_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], layout: str, code: str, where: str
) -> None:
    """A layout a server cannot serve is an error at its file:line; the check exits 1.

    Review R32a F3: each of these passed `rules check` (exit 0); a server then had no active
    version.
    """
    root = tmp_path / "rulesets"
    shutil.copytree(REFERENCE_HOME.parent, root)
    home = root / "patient-enquiries"
    pointer = home / "serving.yaml"
    if code == "versions.not_loaded":
        pointer.write_text('active: "2026.12.2"\n')
    elif code == "serving.unknown_key":
        pointer.write_text('actve: "2026.12.1"\n')
    elif code == "versions.misplaced":
        (home / "2026.12.1").rename(home / "2026.12.2")
    else:
        pointer.unlink()
    assert main(["rules", "check", str(root)]) == 1, layout
    lines = capsys.readouterr().out.splitlines()
    found = [line for line in lines if f" error {code}:" in line]
    assert found, lines
    assert found[0].split(": error ")[0].endswith(where)


def test_rules_check_passes_the_reference_layout(capsys: pytest.CaptureFixture[str]) -> None:
    """Control: the repository's rulesets directory has no pointer or placement problem."""
    assert main(["rules", "check", str(REFERENCE_HOME.parent)]) == 0
    assert " error " not in capsys.readouterr().out


def test_rules_check_of_one_ruleset_home_without_a_pointer_reads_it_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rules check rulesets/<name>`, no serving.yaml: its versions are one ruleset's.

    Review R32d F9: the directory was read as a rulesets directory of flat rulesets, so two
    versions with no pointer, or a version in a directory of another name, passed (exit 0)
    while `rules check rulesets` reported both.
    """
    home = tmp_path / "rulesets" / "patient-enquiries"
    shutil.copytree(REFERENCE_HOME, home)
    (home / "serving.yaml").unlink()
    assert main(["rules", "check", str(home)]) == 1
    out = capsys.readouterr().out
    assert f"{home}: error versions.no_active: ruleset patient-enquiries has versions" in out
    (home / "2026.12.1").rename(home / "2026.12.9")
    assert main(["rules", "check", str(home)]) == 1
    assert " error versions.misplaced: this file declares version `2026.12.1`" in (
        capsys.readouterr().out
    )


def test_a_wrong_ruleset_name_is_misplaced_at_its_line_and_the_pointer_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Review R34b F5: `ruleset: patient-enquiry` was reported at line 1, not at its line.

    The pointer naming that version still says it is not loaded (the server would serve no
    active version), and now that its own file has the errors.
    """
    root = tmp_path / "rulesets"
    shutil.copytree(REFERENCE_HOME.parent, root)
    path = root / "patient-enquiries" / "2026.12.1" / "ruleset.yaml"
    text = path.read_text()
    path.write_text(text.replace("ruleset: patient-enquiries\n", "ruleset: patient-enquiry\n", 1))
    line = text.splitlines().index("ruleset: patient-enquiries") + 1
    assert main(["rules", "check", str(root)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [x.split(": error ")[0] for x in out if " error versions.misplaced:" in x] == [
        f"{path}:{line}"
    ]
    (pointer,) = [x for x in out if " error versions.not_loaded:" in x]
    assert pointer.endswith(
        "only pinned requests are served (its file 2026.12.1/ruleset.yaml has the errors listed "
        "for it)"
    )


@pytest.mark.parametrize("given", ["directory", "file"])
def test_a_version_checked_on_its_own_is_misplaced_as_the_whole_ruleset_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    """A version directory (or its file) checked alone is misplaced where its ruleset's check is.

    Docs walk, finding 3: `rules check rulesets/<name>/<version>` passed (exit 0) a version
    whose `version:` is not its directory's name, which the server and a check of the whole
    ruleset refuse (`versions.misplaced`); the walkthrough tells operators to check just that.
    """
    home = tmp_path / "rulesets" / "patient-enquiries"
    shutil.copytree(REFERENCE_HOME, home)
    draft = home / "2027.01.0"
    assert main(["rules", "new-version", str(home), "--version", "2027.01.0"]) == 0
    path = draft / "ruleset.yaml"
    text = path.read_text()
    path.write_text(text.replace('version: "2027.01.0"', 'version: "2027.01.1"', 1))
    line = text.splitlines().index('version: "2027.01.0"') + 1
    capsys.readouterr()
    assert main(["rules", "check", str(home)]) == 1
    whole = [x for x in capsys.readouterr().out.splitlines() if " error " in x]
    assert main(["rules", "check", str(draft if given == "directory" else path)]) == 1
    alone = [x for x in capsys.readouterr().out.splitlines() if " error " in x]
    expected = (
        f"{path}:{line}: error versions.misplaced: this file declares version `2027.01.1` but "
        "sits in directory `2027.01.0/`: rename the directory to 2027.01.1/ or fix `version:` "
        "(create new versions with `caseroute rules new-version`)"
    )
    assert (alone, whole) == ([expected], [expected])


def test_a_version_checked_on_its_own_under_a_directory_of_another_name_is_misplaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version directory with a pointer beside it also gets the ruleset-name check."""
    home = tmp_path / "rulesets" / "patient-enquiry"
    shutil.copytree(REFERENCE_HOME, home)
    version = home / "2026.12.1"
    assert main(["rules", "check", str(version)]) == 1
    line = _line_of(version / "ruleset.yaml", "ruleset: patient-enquiries")
    assert [x for x in capsys.readouterr().out.splitlines() if " error " in x] == [
        (
            f"{version / 'ruleset.yaml'}:{line}: error versions.misplaced: this file declares "
            "ruleset `patient-enquiries` but sits under `patient-enquiry/`: a version lives in "
            "rulesets/<name>/<version>/; move it to patient-enquiries/2026.12.1/ or fix `ruleset:`"
        )
    ]


def test_an_unquoted_version_in_its_own_directory_is_told_to_quote_it_not_to_rename(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`version: 2026.10` in 2026.10/ is one error at its line: quote it.

    Docs walk, finding 4: it was read as 2026.1 and the check advised renaming the directory.
    """
    home = tmp_path / "rulesets" / "patient-enquiries"
    shutil.copytree(REFERENCE_HOME, home)
    version = home / "2026.10"
    shutil.copytree(home / "2026.12.1", version)
    path = version / "ruleset.yaml"
    path.write_text(path.read_text().replace('version: "2026.12.1"', "version: 2026.10", 1))
    line = _line_of(path, "version: 2026.10")
    assert main(["rules", "check", str(version)]) == 1
    assert [x for x in capsys.readouterr().out.splitlines() if " error " in x] == [
        (
            f"{path}:{line}:10: error schema.type: `version` is the number 2026.1 to YAML, not "
            "text (YAML reads an unquoted version such as 2026.10 as the number 2026.1): quote it "
            'as written, e.g. "2026.10"'
        )
    ]


@pytest.mark.parametrize("given", ["directory", "file"])
def test_a_version_checked_on_its_own_reports_its_rulesets_unreadable_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], given: str
) -> None:
    """A serving.yaml the server would refuse fails a lone version's check as the whole's does.

    `rules check rulesets/<name>/<version>` passed (exit 0) beside a pointer with a misspelt
    key, which the server refuses at load (no active version on a first start, the last good
    choice kept on a reload) and `rules check rulesets/<name>` reports at its file:line.
    """
    home = tmp_path / "rulesets" / "patient-enquiries"
    shutil.copytree(REFERENCE_HOME, home)
    (home / "serving.yaml").write_text('active: "2026.12.1"\nshadw: "2026.11.1"\n')
    version = home / "2026.12.1"
    assert main(["rules", "check", str(home)]) == 1
    whole = [x for x in capsys.readouterr().out.splitlines() if " error " in x]
    given_path = version if given == "directory" else version / "ruleset.yaml"
    assert main(["rules", "check", str(given_path)]) == 1
    alone = [x for x in capsys.readouterr().out.splitlines() if " error " in x]
    expected = (
        f"{home / 'serving.yaml'}:2:1: error serving.unknown_key: unknown key `shadw` (did you "
        "mean `shadow`?); a serving file has only active, shadow, previous, retired"
    )
    assert (alone, whole) == ([expected], [expected])


def test_a_version_checked_on_its_own_leaves_the_other_versions_to_the_whole_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pointer naming another version that is not there: the lone check of one passes.

    Whether another version loads is known only by compiling it, which the whole ruleset's
    check does (`versions.not_loaded`); a lone check reports the pointer's own problems.
    """
    home = tmp_path / "rulesets" / "patient-enquiries"
    shutil.copytree(REFERENCE_HOME, home)
    (home / "serving.yaml").write_text('active: "2026.12.1"\nshadow: "2027.01.0"\n')
    assert main(["rules", "check", str(home / "2026.12.1")]) == 0
    assert " error " not in capsys.readouterr().out
    assert main(["rules", "check", str(home)]) == 1
    assert " error versions.not_loaded: the shadow version 2027.01.0 " in capsys.readouterr().out
    (home / "serving.yaml").unlink()  # no pointer: nothing to read beside the version
    assert main(["rules", "check", str(home / "2026.12.1")]) == 0


def test_a_roster_place_code_naming_no_place_is_reported_with_the_code_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped territory and licence jurisdiction: a warning each, the agent and the fix."""
    agent = dict(
        AGENT,
        territories=["US-TXX", "US-TX"],
        licences=[{"type": "RN", "jurisdiction": "UK-ENG", "expires_on": "2027-01-31"}],
    )
    roster = _roster_file(tmp_path, dict(ROSTER, agents=[agent]))
    args = ["rules", "check", str(REFERENCE_RULESET), "--roster", str(roster), "--format", "json"]
    assert main(args) == 0
    (checked,) = json.loads(capsys.readouterr().out)["paths"]
    places = [p for p in checked["problems"] if p["code"] == "roster.unknown_place"]
    assert [(p["severity"], p["file"], p["line"]) for p in places] == [
        ("warning", "roster.json", 0),
        ("warning", "roster.json", 0),
    ]
    assert places[0]["message"].startswith(
        "agent `nurse-1` territories: `US-TXX` is no ISO 3166-2 subdivision of US (did you mean "
        "`US-TX`?), so it covers no case's region but that very code; fix the roster"
    )
    assert places[1]["message"].startswith(
        "agent `nurse-1` licences: `UK-ENG` is no ISO 3166-1 country code (did you mean "
        "`GB-ENG`?), so a licence recorded under it is valid in no patient location"
    )
    assert main([*args[:-2], "--strict"]) == 1  # --strict: every roster finding is an error
    assert "error roster.unknown_place" in capsys.readouterr().out


def test_a_roster_of_real_places_has_no_place_findings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The example roster's codes all name places: no roster.unknown_place."""
    roster = REFERENCE_HOME.parent.parent / "examples" / "roster.json"
    assert main(["rules", "check", str(REFERENCE_RULESET), "--roster", str(roster)]) == 0
    assert "roster.unknown_place" not in capsys.readouterr().out


def test_a_code_under_two_licences_of_one_agent_is_one_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two licences recorded under the same mistyped code: one warning for the agent, not two."""
    licence = {"jurisdiction": "UK-ENG", "expires_on": "2027-01-31"}
    agent = dict(AGENT, licences=[dict(licence, type="RN"), dict(licence, type="pharmacist")])
    roster = _roster_file(tmp_path, dict(ROSTER, agents=[agent]))
    assert main(["rules", "check", str(REFERENCE_RULESET), "--roster", str(roster)]) == 0
    out = capsys.readouterr().out
    assert out.count("roster.unknown_place") == 1
    assert "agent `nurse-1` licences: `UK-ENG`" in out


def _bracketed_areas(tmp_path: Path, count: int) -> Path:
    """The reference ruleset with ``count`` areas written `eN: [Y56]` (schema.type each)."""
    text = RULESET_YAML.read_text()
    areas = "".join(f"  e{i:05d}: [Y56]\n" for i in range(count))
    path = tmp_path / "ruleset.yaml"
    path.write_text(text + "areas:\n" + areas)
    return path


def test_problems_of_one_code_are_printed_up_to_a_cap_then_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A generated file with thousands of one mistake printed thousands of lines.

    The text output now prints the first 20 of a code and one line counting the rest (from,
    to); the summary still counts every one, `--max-per-code 0` prints them all and
    `--format json` lists them all.
    """
    from caseroute.cli.problem_lines import SHOWN_PER_CODE

    path = _bracketed_areas(tmp_path, SHOWN_PER_CODE + 5)
    first_area = _line_of(path, "e00000: [Y56]")
    code = main(["rules", "check", str(path)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert len([line for line in lines if "error schema.type" in line]) == SHOWN_PER_CODE
    start, end = first_area + SHOWN_PER_CODE, first_area + SHOWN_PER_CODE + 4
    counted = (
        f"... and 5 more schema.type problem(s) like these, from {path}:{start}:11 to "
        f"{path}:{end}:11; fix the ones above and check again, or see every one with "
        "--max-per-code 0 or --format json"
    )
    assert lines[-2:] == [counted, f"{path}: {SHOWN_PER_CODE + 5} error(s), 0 warning(s)"]
    assert main(["rules", "check", str(path), "--max-per-code", "0"]) == 1
    every = capsys.readouterr().out.splitlines()
    assert len([line for line in every if "error schema.type" in line]) == SHOWN_PER_CODE + 5
    assert not any(line.startswith("... and") for line in every)
    assert main(["rules", "check", str(path), "--format", "json"]) == 1
    (report,) = json.loads(capsys.readouterr().out)["paths"]
    assert len(report["problems"]) == SHOWN_PER_CODE + 5


def test_max_per_code_takes_a_whole_number(capsys: pytest.CaptureFixture[str]) -> None:
    """`--max-per-code -1` is a usage error saying what to give."""
    with pytest.raises(SystemExit) as stopped:
        main(["rules", "check", str(RULESET_YAML), "--max-per-code", "-1"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.endswith(
        "argument --max-per-code: must be a whole number of at least 0 (0 prints every "
        "problem), got '-1'\n"
    )
