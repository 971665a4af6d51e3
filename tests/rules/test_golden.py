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
