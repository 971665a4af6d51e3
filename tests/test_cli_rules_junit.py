"""`caseroute rules test --format junit`: the JUnit XML that CI systems read."""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.domain.errors import Problem
from caseroute.rules.junit import load_error_suite, render_junit
from caseroute.testing import CATCH_ALL_RULE, ruleset_with_rules
from tests.rules.lint_texts import NO_LICENCE

HEADER = """\
now: "2026-11-21T10:00:00Z"
roster: {snapshot_id: s1, taken_at: "2026-11-21T09:00:00Z", agents: []}
cases:
"""
GENERAL_QUEUES = """\
  - name: general-queues
    case: {case_id: G1, created_at: "2026-11-21T09:00:00Z", channel: phone, intent: general,
           urgency: routine, region: US-TX}
    expect: {outcome: QUEUE, rule: rest}
"""
SAFEGUARDING_ESCALATES = """\
  - name: safeguarding-escalates
    case: {case_id: G2, created_at: "2026-11-21T09:00:00Z", channel: phone, intent: general,
           urgency: routine, region: US-TX, flags: [safeguarding]}
    expect: {outcome: ESCALATE, rule: safeguarding, queue: safeguarding}
"""
WRONGLY_EXPECTS_ESCALATE = """\
  - name: wrongly-expects-escalate
    case: {case_id: G3, created_at: "2026-11-21T09:00:00Z", channel: phone, intent: general,
           urgency: routine, region: US-TX}
    expect: {outcome: ESCALATE, rule: rest, queue: triage}
"""
MISMATCHES = [
    "outcome: expected 'ESCALATE', got 'QUEUE'",
    "queue: expected 'triage', got 'general'",
]


def _ruleset_dir(tmp_path: Path, golden: str | None, ruleset: str | None = None) -> Path:
    """A ruleset directory holding ``ruleset`` (default: the smallest valid one) and ``golden``."""
    (tmp_path / "ruleset.yaml").write_text(ruleset or ruleset_with_rules(CATCH_ALL_RULE))
    if golden is not None:
        (tmp_path / "golden").mkdir()
        (tmp_path / "golden" / "g.yaml").write_text(golden)
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> tuple[int, ET.Element]:
    """Exit code and parsed stdout of ``rules test PATH --format junit``; stderr must be empty."""
    code = main(["rules", "test", str(path), "--engine", "python", "--format", "junit", *extra])
    out, err = capsys.readouterr()
    assert err == ""
    return code, _parse(out)


def _parse(text: str) -> ET.Element:
    """The XML document ``text``: our own output, so the stdlib parser is fine (not defusedxml)."""
    return ET.fromstring(text)  # noqa: S314 - parses output this test just produced


def _shape(element: ET.Element) -> object:
    """Tag, attributes, stripped text and children of ``element``, recursively, as plain data."""
    children = [_shape(child) for child in element]
    text = (element.text or "").strip()
    return (
        (element.tag, dict(element.attrib), text, children)
        if text
        else (
            element.tag,
            dict(element.attrib),
            children,
        )
    )


def _attrib(element: ET.Element) -> dict[str, str]:
    """The attributes of ``element`` as a plain dict."""
    return dict(element.attrib)


def _outcomes(root: ET.Element, tag: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Per testcase: classname, name and each ``tag`` child's message and type."""
    return [
        (
            case.attrib["classname"],
            case.attrib["name"],
            [(f.attrib["message"], f.attrib["type"]) for f in case.iter(tag)],
        )
        for case in root.iter("testcase")
    ]


def _properties(path: Path, sha256: str) -> object:
    return (
        "properties",
        {},
        [
            ("property", {"name": "path", "value": str(path)}, []),
            ("property", {"name": "ruleset_version", "value": "1"}, []),
            ("property", {"name": "ruleset_sha256", "value": sha256}, []),
            ("property", {"name": "engine", "value": "python"}, []),
        ],
    )


def _sha256(root: ET.Element) -> str:
    prop = root.find("./testsuite/properties/property[@name='ruleset_sha256']")
    assert prop is not None
    return prop.attrib["value"]


def test_a_passing_golden_set_with_full_coverage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Passing cases and covered rules: one suite, a testcase per case and per rule, exit 0."""
    path = _ruleset_dir(tmp_path, HEADER + GENERAL_QUEUES + SAFEGUARDING_ESCALATES)
    code, root = _run(capsys, path, "--require-coverage")
    golden = str(path / "golden" / "g.yaml")
    ruleset = str(path / "ruleset.yaml")
    assert code == 0
    assert (
        "testsuites",
        {"name": "caseroute rules test", "tests": "4", "failures": "0", "errors": "0"},
        [
            (
                "testsuite",
                {"name": "test@1", "tests": "4", "failures": "0", "errors": "0", "skipped": "0"},
                [
                    _properties(path, _sha256(root)),
                    (
                        "testcase",
                        {
                            "classname": "test",
                            "name": "general-queues",
                            "file": golden,
                            "line": "4",
                        },
                        [],
                    ),
                    (
                        "testcase",
                        {
                            "classname": "test",
                            "name": "safeguarding-escalates",
                            "file": golden,
                            "line": "8",
                        },
                        [],
                    ),
                    (
                        "testcase",
                        {
                            "classname": "test.coverage",
                            "name": "safeguarding",
                            "file": ruleset,
                            "line": "11",
                        },
                        [],
                    ),
                    (
                        "testcase",
                        {
                            "classname": "test.coverage",
                            "name": "rest",
                            "file": ruleset,
                            "line": "14",
                        },
                        [],
                    ),
                ],
            )
        ],
    ) == _shape(root)
    assert len(_sha256(root)) == 64


def test_a_failing_golden_case_is_a_failure_with_the_mismatches(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A failing case carries the runner's mismatch text; no rule testcases without coverage."""
    path = _ruleset_dir(tmp_path, HEADER + GENERAL_QUEUES + WRONGLY_EXPECTS_ESCALATE)
    code, root = _run(capsys, path)
    golden = str(path / "golden" / "g.yaml")
    assert code == 1
    assert (
        "testsuites",
        {"name": "caseroute rules test", "tests": "2", "failures": "1", "errors": "0"},
        [
            (
                "testsuite",
                {"name": "test@1", "tests": "2", "failures": "1", "errors": "0", "skipped": "0"},
                [
                    _properties(path, _sha256(root)),
                    (
                        "testcase",
                        {
                            "classname": "test",
                            "name": "general-queues",
                            "file": golden,
                            "line": "4",
                        },
                        [],
                    ),
                    (
                        "testcase",
                        {
                            "classname": "test",
                            "name": "wrongly-expects-escalate",
                            "file": golden,
                            "line": "8",
                        },
                        [
                            (
                                "failure",
                                {"message": "; ".join(MISMATCHES), "type": "mismatch"},
                                "\n".join(MISMATCHES),
                                [],
                            )
                        ],
                    ),
                ],
            )
        ],
    ) == _shape(root)


def test_coverage_gaps_are_failures_naming_the_case_to_add(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """With --require-coverage a rule that never decides, or always does, is a failing testcase."""
    path = _ruleset_dir(tmp_path, HEADER + GENERAL_QUEUES)
    code, root = _run(capsys, path, "--require-coverage")
    assert code == 1
    assert _attrib(root) == {
        "name": "caseroute rules test",
        "tests": "3",
        "failures": "2",
        "errors": "0",
    }
    never_decides = (
        "rule `safeguarding` decides none of the 1 golden case(s): add a case it decides"
    )
    decides_all = (
        "catch-all rule `rest` decides all 1 golden case(s): add a case an earlier rule decides"
    )
    assert [
        ("test", "general-queues", []),
        ("test.coverage", "safeguarding", [(never_decides, "coverage")]),
        ("test.coverage", "rest", [(decides_all, "coverage")]),
    ] == _outcomes(root, "failure")
    failure = root.find(".//failure")
    assert failure is not None
    assert failure.attrib["message"] == failure.text


def test_a_rule_that_fires_in_every_case_needs_one_where_it_does_not(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A rule shadowed by an earlier one in every case lacks both a deciding and a missing case."""
    rules = """\
  - id: routine
    when: "case.urgency == 'routine'"
    then: {route: {queue: by_intent}}
  - id: always
    when: "case.intent == 'general'"
    then: {route: {queue: by_intent}}
"""
    path = _ruleset_dir(
        tmp_path, HEADER + GENERAL_QUEUES, ruleset_with_rules(rules + CATCH_ALL_RULE)
    )
    code, root = _run(capsys, path, "--require-coverage")
    assert code == 1
    both = (
        "rule `always` decides none of the 1 golden case(s): add a case it decides; rule "
        "`always` fires in all 1 golden case(s): add a case where it does not fire"
    )
    outcomes = {name: failures for _, name, failures in _outcomes(root, "failure")}
    assert [(both, "coverage")] == outcomes["always"]


def test_a_ruleset_that_does_not_load_is_one_suite_with_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A broken ruleset: one suite named by its path, one testcase whose error lists file:line."""
    path = _ruleset_dir(
        tmp_path,
        HEADER + GENERAL_QUEUES,
        ruleset_with_rules(CATCH_ALL_RULE).replace("owner", "ownr"),
    )
    code, root = _run(capsys, path)
    file = str(path / "ruleset.yaml")
    problems = [
        (
            f"{file}:4:1: error schema.unknown_key: unknown field `ownr` in the ruleset file (did "
            "you mean `owner`?)"
        ),
        (
            f"{file}:6: warning lint.no_consent: no consent constraint: a case flagged "
            "consent_missing goes to the exceptions queue instead of queueing for consent; add "
            "`consent: {flag: consent_missing}` under `constraints`"
        ),
        f"{file}:6: warning lint.no_licence: {NO_LICENCE}",
    ]
    assert code == 1
    assert (
        "testsuites",
        {"name": "caseroute rules test", "tests": "1", "failures": "0", "errors": "1"},
        [
            (
                "testsuite",
                {"name": str(path), "tests": "1", "failures": "0", "errors": "1", "skipped": "0"},
                [
                    ("properties", {}, [("property", {"name": "path", "value": str(path)}, [])]),
                    (
                        "testcase",
                        {"classname": str(path), "name": "load ruleset"},
                        [
                            (
                                "error",
                                {
                                    "message": "the ruleset does not load: 1 error(s), 2 "
                                    "warning(s); fix each problem listed (file:line) and re-run",
                                    "type": "load",
                                },
                                "\n".join(problems),
                                [],
                            )
                        ],
                    ),
                ],
            )
        ],
    ) == _shape(root)


def test_golden_cases_that_do_not_load_are_an_error_in_the_rulesets_suite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A broken golden file: the ruleset's own suite holds one testcase with the file's problems."""
    path = _ruleset_dir(tmp_path, HEADER + GENERAL_QUEUES + GENERAL_QUEUES)
    code, root = _run(capsys, path)
    golden = str(path / "golden" / "g.yaml")
    assert code == 1
    suite = root.find("testsuite")
    assert suite is not None
    assert _attrib(suite) == {
        "name": "test@1",
        "tests": "1",
        "failures": "0",
        "errors": "1",
        "skipped": "0",
    }
    message = (
        "the golden cases beside the ruleset do not load: 1 error(s), 0 warning(s); fix each "
        "problem listed (file:line) and re-run"
    )
    text = (
        f"{golden}:8:5: error golden.duplicate_name [golden case general-queues]: golden case "
        "name `general-queues` is used twice in this file; give each case its own name"
    )
    assert [("test", "load golden cases", [(message, "load")])] == _outcomes(root, "error")
    assert [text] == [e.text for e in root.iter("error")]


def test_characters_xml_cannot_hold_are_stripped_from_operator_text(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Control characters in a path reach the XML stripped; the output is ASCII and parses."""
    path = tmp_path / "bad\x01\x1b[31m\x7fdir"
    path.mkdir()
    _ruleset_dir(path, None, "ruleset: [\n")
    code = main(["rules", "test", str(path), "--format", "junit"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.isascii()
    suite = _parse(out).find("testsuite")
    assert suite is not None
    assert str(tmp_path / "bad[31mdir") == suite.attrib["name"]


def test_render_strips_every_character_xml_1_0_cannot_hold() -> None:
    """C0 controls but tab and newline, CR, DEL, C1, surrogates and U+FFFE/U+FFFF are dropped."""
    message = "a\x00b\x1bc\rd\x7fe\x85f\ud800g\ufffeh\uffffi\tj\nk\u202el\U0001f600m"
    suite = load_error_suite(
        name="s\x0b",
        classname="c",
        testcase="t",
        message=message,
        problems=[Problem("x.y", message, "f\x0c.yaml", 3)],
        properties={"path": "p\x1f"},
    )
    out = render_junit([suite])
    assert out.isascii()
    root = _parse(out)
    kept = "abcdefghi\tj\nk\u202el\U0001f600m"
    error = root.find(".//error")
    assert error is not None
    assert ("s", kept, f"f.yaml:3: error x.y: {kept}", "p") == (
        root.find("testsuite").attrib["name"],  # type: ignore[union-attr]
        error.attrib["message"],
        error.text,
        root.find(".//property").attrib["value"],  # type: ignore[union-attr]
    )
