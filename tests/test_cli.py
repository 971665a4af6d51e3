import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from caseroute.cli import main
from caseroute.testing import REFERENCE_RULESET, REPO_ROOT, reference_compiled

EXAMPLES = REPO_ROOT / "examples"
NOW = "2026-11-21T10:00:00Z"


def _reference_sha256() -> str:
    return reference_compiled().sha256


def _line_of(path: Path, text: str) -> int:
    """1-based number of the first line of ``path`` that contains ``text``."""
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines) if text in line) + 1


def _decide(capsys: pytest.CaptureFixture[str], case: str, *extra: str) -> tuple[int, str]:
    code = main(
        [
            "decide",
            "--case",
            str(EXAMPLES / "cases" / case),
            "--roster",
            str(EXAMPLES / "roster.json"),
            "--ruleset",
            str(REFERENCE_RULESET),
            "--now",
            NOW,
            *extra,
        ]
    )
    return code, capsys.readouterr().out


def test_decide_prints_a_readable_explanation(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo command explains the outcome, the rules, agents and provenance in words."""
    code, out = _decide(capsys, "clinical-tx.json")
    assert code == 0
    assert (
        out.splitlines()[0] == "CASE-1001: ASSIGN to nurse-tx-02 (queue clinical), priority normal"
    )
    lines = out.splitlines()
    for line in (
        "  5. clinical: APPLIES - decided",
        "      fails: case.urgency == 'critical'   [case.urgency = 'urgent']",
        "  x nurse-ca-01: licence: needs RN valid in US-TX, has RN US-CA (single-state)",
        "  1. nurse-tx-02: utilisation 0.2, clinical-triage level 2, idle minutes 50   <- chosen",
        f"  ruleset patient-enquiries version 2026.12.1 (sha256 {_reference_sha256()})",
    ):
        assert line in lines


def test_decide_json_matches_the_text_decision(capsys: pytest.CaptureFixture[str]) -> None:
    """--json emits the same decision as data."""
    code, out = _decide(capsys, "unhappy-sla-at-risk.json", "--json", "--engine", "python")
    data = json.loads(out)
    assert (code, data["outcome"], data["agent_id"], data["rule_id"]) == (
        0,
        "OUTCOME_ESCALATE",
        "senior-tx-01",
        "unhappy-sla-at-risk",
    )
    assert data["explanation"]["engine"] == "python"


def test_bad_case_file_names_the_field(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Invalid input exits 2 with field paths, never a traceback."""
    bad = tmp_path / "case.json"
    bad.write_text('{"case_id": "x", "intent": "clinicl"}')
    code = main(
        [
            "decide",
            "--case",
            str(bad),
            "--roster",
            str(EXAMPLES / "roster.json"),
            "--ruleset",
            str(REFERENCE_RULESET),
        ]
    )
    err = capsys.readouterr().err
    assert (code, err.splitlines()) == (
        2,
        [
            "caseroute: invalid request (4 problem(s)):",
            "  - case.created_at: is required",
            "  - case.channel: is required",
            (
                "  - case.intent: must be one of INTENT_CLINICAL, INTENT_PRESCRIPTION, "
                "INTENT_APPOINTMENT, INTENT_BILLING, INTENT_COMPLAINT, INTENT_GENERAL; got "
                "'clinicl' (did you mean 'INTENT_CLINICAL'?)"
            ),
            "  - case.urgency: is required",
        ],
    )


def test_malformed_json_reports_line_and_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A JSON syntax error is reported with file:line:col."""
    bad = tmp_path / "case.json"
    bad.write_text('{\n  "case_id": "x",\n}')
    assert main(["decide", "--case", str(bad), "--roster", str(bad)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "caseroute: invalid request (1 problem(s)):",
        (
            f"  - case: {bad}:3:1: case file is not valid JSON: "
            "Expecting property name enclosed in double quotes"
        ),
    ]


def test_rules_check_ok_and_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`rules check` exits 0 on a good ruleset and 1 with every problem on a bad one."""
    assert main(["rules", "check", str(REFERENCE_RULESET)]) == 0
    assert capsys.readouterr().out == (
        f"{REFERENCE_RULESET}: ok - patient-enquiries version 2026.12.1, 7 rules, 8 conditions, "
        f"sha256 {_reference_sha256()}; 0 warning(s)\n"
    )
    broken = tmp_path / "ruleset.yaml"
    text = (REFERENCE_RULESET / "ruleset.yaml").read_text()
    broken.write_text(
        text.replace("case.urgency == 'critical'", "case.urgncy == 'critical'").replace(
            "when: case.intent == 'prescription'", "when: case.intent = 1"
        )
    )
    assert main(["rules", "check", str(broken)]) == 1
    urgncy, assignment = _line_of(broken, "case.urgncy"), _line_of(broken, "case.intent = 1")
    assert capsys.readouterr().out.splitlines() == [
        (
            f"{broken}:{urgncy}:41: error expr.unknown_field [rule critical-clinical]: "
            "unknown field `case.urgncy` (did you mean `case.urgency`?)"
        ),
        (
            f"{broken}:{assignment}:23: error expr.syntax [rule prescription]: cannot read "
            "condition: `=` is not a comparison; use `==`"
        ),
        f"{broken}: 2 error(s), 0 warning(s)",
    ]


def test_rules_test_runs_golden_cases(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`rules test` passes the shipped golden cases and fails when one is wrong."""
    assert main(["rules", "test", str(REFERENCE_RULESET), "--require-coverage"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "34 passed, 0 failed"
    copy = tmp_path / "patient-enquiries"
    shutil.copytree(REFERENCE_RULESET, copy)
    cases = copy / "golden" / "cases.yaml"
    cases.write_text(cases.read_text().replace("agent: pharm-tx-01", "agent: billing-01"))
    assert main(["rules", "test", str(copy)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    line = _line_of(cases, "- name: prescription-goes-to-licensed-pharmacist")
    failed = lines.index(f"FAIL prescription-goes-to-licensed-pharmacist ({cases}:{line})")
    assert lines[failed + 1] == "     agent: expected 'billing-01', got 'pharm-tx-01'"
    assert lines[-1] == "33 passed, 1 failed"
    advice = (
        "caseroute: 1 golden case(s) decided otherwise than their `expect:` says (each FAIL "
        "above, at its file:line, with what was expected and what was decided): if the change "
        "of ruleset is meant, update those `expect:` entries to the new decision; if not, fix "
        f"the ruleset. Then rerun `caseroute rules test {copy}`."
    )
    assert captured.err.splitlines() == [advice]


def test_rules_test_refuses_a_not_fired_rule_the_ruleset_lacks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Review R34b F6: a misspelt `not_fired` rule could never fire, so the case passed.

    `rules test` now refuses the golden file at that line and exits 1.
    """
    copy = tmp_path / "patient-enquiries"
    shutil.copytree(REFERENCE_RULESET, copy)
    cases = copy / "golden" / "cases.yaml"
    cases.write_text(
        cases.read_text().replace("not_fired: [safeguarding]", "not_fired: [safegaurding]", 1)
    )
    assert main(["rules", "test", str(copy)]) == 1
    err = capsys.readouterr().err
    line = _line_of(cases, "not_fired: [safegaurding]")
    assert f"{cases}:{line}:" in err
    assert "golden.unknown_rule" in err
    assert "did you mean `safeguarding`?" in err


def test_rules_test_golden_errors_point_at_the_golden_file_not_rules_check(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Golden-file errors: each at its own line, `[golden case CASE]`, fix and rerun `rules test`.

    Review finding 5: they sent operators to `rules check` (which reads no golden file and says
    ok), at the case's first key, labelled `[rule CASE]`, under "ruleset has N error(s)", with
    the live-traffic safeguarding notice as one more finding.
    """
    copy = tmp_path / "g"
    shutil.copytree(REFERENCE_RULESET, copy)
    cases = copy / "golden" / "cases.yaml"
    cases.write_text(
        cases.read_text()
        .replace(
            "      flags: [safeguarding, vip]\n",
            "      flags: [safeguarding, vip]\n      chanel: phone\n",
            1,
        )
        .replace(
            "      outcome: ESCALATE\n      rule: safeguarding\n",
            "      outcome: ESCALTE\n      rule: safegaurding\n",
            1,
        )
    )
    assert main(["rules", "test", str(copy)]) == 1
    err = capsys.readouterr().err
    case = "[golden case safeguarding-escalates-regardless]"
    chanel, outcome = _line_of(cases, "chanel: phone"), _line_of(cases, "outcome: ESCALTE")
    assert err.splitlines() == [
        "caseroute: golden file(s) have 3 error(s):",
        (
            f"  {cases}:{chanel}:7: error golden.case {case}: case.chanel: unknown field (did "
            "you mean `channel`?)"
        ),
        (
            f"  {cases}:{outcome}:16: error schema.value {case}: expect.outcome must be one of "
            "ASSIGN, ESCALATE, QUEUE, EXCEPTION; got 'ESCALTE' (did you mean 'ESCALATE'?)"
        ),
        (
            f"  {cases}:{outcome + 1}:13: error golden.unknown_rule {case}: expect.rule names "
            "rule `safegaurding`, which is not in this ruleset (did you mean `safeguarding`?); "
            "name a rule of the ruleset, or a built-in check such as `constraint:safeguarding`"
        ),
        f"Fix the golden file(s) at the lines above and rerun `caseroute rules test {copy}`.",
    ]


def test_rules_test_json_names_the_golden_case_of_a_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`--format json`: a golden file's problem has `golden_case`, and no `rule_id`."""
    copy = tmp_path / "g"
    shutil.copytree(REFERENCE_RULESET, copy)
    cases = copy / "golden" / "cases.yaml"
    cases.write_text(
        cases.read_text().replace("      channel: phone\n", "      chanel: phone\n", 1)
    )
    assert main(["rules", "test", str(copy), "--format", "json"]) == 1
    (problem,) = json.loads(capsys.readouterr().out)["paths"][0]["problems"]
    assert problem == {
        "code": "golden.case",
        "severity": "error",
        "file": str(cases),
        "line": _line_of(cases, "chanel: phone"),
        "column": 7,
        "rule_id": None,
        "golden_case": "safeguarding-escalates-regardless",
        "message": "case.chanel: unknown field (did you mean `channel`?)",
    }


def test_rules_fields_lists_readable_fields(capsys: pytest.CaptureFixture[str]) -> None:
    """Operators can list every field a condition can read."""
    assert main(["rules", "fields"]) == 0
    assert (
        "sla.risk                           one of ok, at_risk, breached (may be missing): "
        "risk of the most urgent clock"
    ) in capsys.readouterr().out.splitlines()


def test_engine_setting_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """CASEROUTE_ENGINE=python selects the pure-Python evaluator without a flag."""
    monkeypatch.setenv("CASEROUTE_ENGINE", "python")
    code, out = _decide(capsys, "safeguarding.json", "--json")
    assert (code, json.loads(out)["explanation"]["engine"]) == (0, "python")


def test_output_into_a_closed_pipe_ends_quietly() -> None:
    """`caseroute ... | head -1`: a reader that went away ends the command without a traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written, like a finished `head`
    try:
        done = subprocess.run(
            [sys.executable, "-m", "caseroute.cli", "rules", "fields"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            check=False,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (done.stderr, done.returncode) == (b"", 1)
