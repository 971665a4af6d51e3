from pathlib import Path

import pytest

from caseroute.domain.errors import RulesetError
from caseroute.engine.case_rules import EngineKind
from caseroute.engine.decide import decide
from caseroute.rules.golden import (
    GoldenCase,
    load_golden,
    load_golden_file,
    rule_coverage,
    run_golden,
)
from caseroute.testing import REFERENCE_RULESET, reference_compiled, reference_ruleset

CASES = load_golden(REFERENCE_RULESET)
RULESETS = {kind: reference_ruleset(kind) for kind in EngineKind}


@pytest.mark.parametrize("engine", list(EngineKind))
@pytest.mark.parametrize("golden", CASES, ids=[c.name for c in CASES])
def test_reference_golden_case(golden: GoldenCase, engine: EngineKind) -> None:
    """Each golden case's outcome and reasons hold under both engines."""
    ruleset = RULESETS[engine]
    (result,) = run_golden([golden], lambda c, r, now: decide(c, r, ruleset, now))
    assert list(result.mismatches) == [], golden.location


def test_every_rule_decides_one_case_and_misses_another() -> None:
    """Golden coverage: each rule fires in some case and is shown not firing in another."""
    ruleset = RULESETS[EngineKind.PYTHON]
    results = run_golden(CASES, lambda c, r, now: decide(c, r, ruleset, now))
    cover = rule_coverage(results, reference_compiled().rules)
    assert {rule_id: (d > 0, n > 0) for rule_id, (d, n) in cover.items()} == dict.fromkeys(
        cover, (True, True)
    )


def test_golden_file_problems_are_located(tmp_path: Path) -> None:
    """A broken golden file reports each problem with file:line."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        'now: "2026-11-21T10:00:00Z"\ncases:\n  - name: x\n    case: {case_id: 1}\n'
        '    roster: {snapshot_id: s, taken_at: "2026-11-21T10:00:00Z", agents: []}\n'
        "    expect: {outcome: ASSGN, rule: r}\n"
    )
    with pytest.raises(RulesetError) as exc:
        load_golden_file(path)
    codes = sorted({(p.code, p.line) for p in exc.value.problems})
    assert codes == [("golden.case", 4), ("schema.value", 6)]


def _one_case_file(path: Path, expect: str) -> Path:
    """A golden file of one QUEUE case with ``expect`` (a YAML flow mapping)."""
    path.write_text(
        'now: "2026-11-21T10:00:00Z"\n'
        'roster: {snapshot_id: s, taken_at: "2026-11-21T10:00:00Z", agents: []}\n'
        "cases:\n"
        "  - name: general-queues\n"
        '    case: {case_id: G1, created_at: "2026-11-21T09:00:00Z", channel: phone,\n'
        "           intent: general, urgency: routine}\n"
        f"    expect: {expect}\n"
    )
    return path


def test_an_expected_rule_outside_the_ruleset_is_refused_at_its_line(tmp_path: Path) -> None:
    """Review R34b F6: `not_fired: [safegaurding]` could never fire, so the case always passed.

    With the ruleset's rule ids, every `not_fired` entry and `rule` must name one of them (a
    built-in check such as `constraint:safeguarding` excepted), with a did-you-mean.
    """
    rule_ids = [rule.rule_id for rule in reference_compiled().rules]
    path = _one_case_file(
        tmp_path / "g.yaml",
        "{outcome: QUEUE, rule: by-intent,\n             not_fired: [safegaurding, prescription]}",
    )
    with pytest.raises(RulesetError) as exc:
        load_golden_file(path, rule_ids)
    assert [(p.code, p.location, p.message) for p in exc.value.problems] == [
        (
            "golden.unknown_rule",
            f"{path}:8:26",
            (
                "case `general-queues`: expect.not_fired names rule `safegaurding`, which is not "
                "in this ruleset (did you mean `safeguarding`?); name a rule of the ruleset, or a "
                "built-in check such as `constraint:safeguarding`"
            ),
        )
    ]
    assert "safegaurding" in load_golden_file(path)[0].expect.not_fired  # unchecked without ids


def test_a_built_in_check_may_be_the_expected_rule(tmp_path: Path) -> None:
    """`constraint:safeguarding` is not a rule id, and is what such a case expects."""
    rule_ids = [rule.rule_id for rule in reference_compiled().rules]
    path = _one_case_file(tmp_path / "g.yaml", "{outcome: ESCALATE, rule: constraint:safeguarding}")
    (case,) = load_golden_file(path, rule_ids)
    assert case.expect.rule == "constraint:safeguarding"


def test_an_unknown_expected_rule_without_a_near_miss_lists_the_rules(tmp_path: Path) -> None:
    """No near spelling: the message lists the ruleset's rules to choose from."""
    path = _one_case_file(tmp_path / "g.yaml", "{outcome: QUEUE, rule: zzz}")
    with pytest.raises(RulesetError) as exc:
        load_golden_file(path, ["b-rule", "a-rule"])
    (problem,) = exc.value.problems
    assert "(its rules: `a-rule`, `b-rule`)" in problem.message


def test_the_reference_golden_cases_name_only_rules_of_their_ruleset() -> None:
    """Loading them with the rule ids refuses nothing."""
    rule_ids = [rule.rule_id for rule in reference_compiled().rules]
    assert len(load_golden(REFERENCE_RULESET, rule_ids)) == len(CASES)


def test_golden_files_ending_yml_are_read_in_name_order(tmp_path: Path) -> None:
    """Review R34b F6: `golden/*.yml` was skipped without a word; `roster*` files are rosters."""
    folder = tmp_path / "golden"
    folder.mkdir()
    _one_case_file(folder / "b.yml", "{outcome: QUEUE, rule: by-intent}")
    _one_case_file(folder / "a.yaml", "{outcome: QUEUE, rule: by-intent}")
    (folder / "roster.yml").write_text("not: a golden file\n")
    (folder / "notes.txt").write_text("not YAML\n")
    assert [c.file for c in load_golden(tmp_path)] == [
        str(folder / "a.yaml"),
        str(folder / "b.yml"),
    ]


def test_an_instant_beyond_utc_in_a_golden_file_is_told_its_range(tmp_path: Path) -> None:
    """`now: 0001-01-01T00:00:00+01:00` is well formed: its range is wrong, not its shape."""
    path = _one_case_file(tmp_path / "g.yaml", "{outcome: QUEUE, rule: by-intent}")
    path.write_text(
        path.read_text().replace('"2026-11-21T10:00:00Z"', '"0001-01-01T00:00:00+01:00"', 1)
    )
    with pytest.raises(RulesetError) as exc:
        load_golden_file(path)
    assert [(p.code, p.message) for p in exc.value.problems] == [
        (
            "golden.now",
            (
                "`now` must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z once "
                "converted to UTC (the range of a protobuf Timestamp)"
            ),
        )
    ]
