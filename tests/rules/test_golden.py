from dataclasses import replace
from pathlib import Path

import pytest

from caseroute.domain.errors import GoldenFileError, Problem, RulesetError
from caseroute.engine.case_rules import EngineKind
from caseroute.engine.decide import decide
from caseroute.engine.matching import CHECK_ORDER
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
    assert [
        (p.code, p.location, p.golden_case, p.rule_id, p.message) for p in exc.value.problems
    ] == [
        (
            "golden.unknown_rule",
            f"{path}:8:26",
            "general-queues",
            None,
            (
                "expect.not_fired names rule `safegaurding`, which is not in this ruleset (did "
                "you mean `safeguarding`?); name a rule of the ruleset, or a built-in check such "
                "as `constraint:safeguarding`"
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


# -- Review finding 5: a golden file's problems point at the mistake, labelled as a golden case --

BLOCK_CASE = """\
now: "2026-11-21T10:00:00Z"
roster: {snapshot_id: s, taken_at: "2026-11-21T10:00:00Z", agents: []}
cases:
  - name: flagged
    case:
      case_id: G1
      createdAt: "2026-11-21T09:00:00Z"
      channel: phone
      intent: general
      urgency: routine
      flags: [safeguarding]
      sla_clocks:
        - name: first
          started_at: "2026-11-21T09:00:00Z"
          deadline: "2026-11-21T11:00:00Z"
    expect: {outcome: ESCALATE, rule: "constraint:safeguarding"}
"""


def _golden_problems(path: Path, text: str) -> list[tuple[str, str, str | None, str]]:
    """Each problem of golden file ``path`` written as ``text``: code, location, case, message."""
    path.write_text(text)
    with pytest.raises(GoldenFileError) as exc:
        load_golden_file(path)
    assert all(p.rule_id is None for p in exc.value.problems)  # a golden case is not a rule
    return [(p.code, p.location, p.golden_case, p.message) for p in exc.value.problems]


def test_an_unknown_case_key_is_reported_at_its_own_line(tmp_path: Path) -> None:
    """`chanel:` added under a case: at the `chanel` line, not the case's first key (11:7)."""
    path = tmp_path / "g.yaml"
    text = BLOCK_CASE.replace("      flags:", "      chanel: phone\n      flags:")
    assert _golden_problems(path, text) == [
        (
            "golden.case",
            f"{path}:11:7",
            "flagged",
            "case.chanel: unknown field (did you mean `channel`?)",
        )
    ]


def test_a_misspelt_required_case_key_is_one_finding_without_the_live_safeguarding_notice(
    tmp_path: Path,
) -> None:
    """`chanel:` for `channel:`: the did-you-mean alone, as a ruleset's misspelt key is.

    Not also "channel: is required", nor the notice a live request carrying the safeguarding
    flag gets ("...resend, or hand it to the safeguarding team").
    """
    path = tmp_path / "g.yaml"
    assert _golden_problems(path, BLOCK_CASE.replace("channel: phone", "chanel: phone")) == [
        (
            "golden.case",
            f"{path}:8:7",
            "flagged",
            "case.chanel: unknown field (did you mean `channel`?)",
        )
    ]


def test_bad_values_are_reported_at_their_field_however_deep_or_spelt(tmp_path: Path) -> None:
    """A nested list item's field, and a field written in its JSON spelling (`createdAt`)."""
    path = tmp_path / "g.yaml"
    text = BLOCK_CASE.replace('createdAt: "2026-11-21T09:00:00Z"', "createdAt: yesterday")
    text = text.replace('deadline: "2026-11-21T11:00:00Z"', "deadline: soon")
    assert [(code, where) for code, where, _, _ in _golden_problems(path, text)] == [
        ("golden.case", f"{path}:7:7"),
        ("golden.case", f"{path}:15:11"),
    ]


def test_a_problem_in_an_inline_roster_is_at_its_field(tmp_path: Path) -> None:
    """An inline roster's bad field: at that field, labelled with the case that holds it."""
    path = tmp_path / "g.yaml"
    text = BLOCK_CASE.replace(
        "  - name: flagged\n",
        "  - name: flagged\n"
        "    roster:\n"
        "      snapshot_id: s\n"
        "      taken_at: soon\n"
        "      agents: []\n",
    )
    assert [(code, where, case) for code, where, case, _ in _golden_problems(path, text)] == [
        ("golden.roster", f"{path}:7:7", "flagged")
    ]


def test_a_roster_file_problem_is_in_the_roster_file_once(tmp_path: Path) -> None:
    """Two cases naming one bad roster file: one finding, at the field in the roster file."""
    (tmp_path / "roster.yaml").write_text(
        'snapshot_id: s\ntaken_at: "2026-11-21T10:00:00Z"\nagents:\n  - agent_id: a\n'
        "    stauts: online\n"
    )
    text = BLOCK_CASE
    text = text.replace("  - name: flagged\n", "  - name: flagged\n    roster: roster.yaml\n")
    second = text.split("cases:\n", 1)[1].replace("name: flagged", "name: flagged-again")
    problems = _golden_problems(tmp_path / "g.yaml", text + second)
    assert [(code, where, case) for code, where, case, _ in problems] == [
        ("golden.roster", f"{tmp_path}/roster.yaml:4:5", None),  # agents[0].capacity missing
        ("golden.roster", f"{tmp_path}/roster.yaml:5:5", None),
    ]
    assert problems[1][3] == "roster.agents[0].stauts: unknown field (did you mean `status`?)"


def test_a_roster_file_that_cannot_be_read_is_reported_where_it_is_named(tmp_path: Path) -> None:
    """`roster: rooster.yaml`: at that line, and the rest of the golden file is still read.

    It said only the missing file's path, and stopped reading the golden file there.
    """
    path = tmp_path / "g.yaml"
    text = BLOCK_CASE.replace(
        'roster: {snapshot_id: s, taken_at: "2026-11-21T10:00:00Z", agents: []}',
        "roster: rooster.yaml",
    ).replace('deadline: "2026-11-21T11:00:00Z"', "deadline: soon")
    assert _golden_problems(path, text) == [
        (
            "golden.roster",
            f"{path}:2:9",
            None,
            (
                f"roster `rooster.yaml` ({tmp_path}/rooster.yaml): cannot read file: No such "
                "file or directory; check the path"
            ),
        ),
        (
            "golden.case",
            f"{path}:15:11",
            "flagged",
            (
                "case.sla_clocks[0].deadline: must be an RFC 3339 instant "
                "YYYY-MM-DDTHH:MM:SS[.fraction] ending in Z or +HH:MM / -HH:MM, e.g. "
                "2026-11-21T09:30:00Z; got 'soon'"
            ),
        ),
    ]


def test_a_bad_file_level_roster_is_not_also_every_case_missing_one(tmp_path: Path) -> None:
    """The file's roster is invalid: that finding alone, not "needs `roster`" per case."""
    path = tmp_path / "g.yaml"
    text = BLOCK_CASE.replace("agents: []}", "agents: 3}")
    assert [(code, where) for code, where, _, _ in _golden_problems(path, text)] == [
        ("golden.roster", f"{path}:2:60")
    ]


def test_golden_problems_say_golden_files_and_label_the_case() -> None:
    """The headline names golden files, and a problem prints `[golden case NAME]`.

    It said "ruleset has N error(s)" and `[rule NAME]`, though the ruleset had loaded.
    """
    problem = Problem("golden.case", "case.chanel: unknown field", "g.yaml", 3, 7, None)
    labelled = replace(problem, golden_case="flagged")
    assert str(GoldenFileError([labelled])).splitlines() == [
        "golden file(s) have 1 error(s):",
        "  g.yaml:3:7: error golden.case [golden case flagged]: case.chanel: unknown field",
    ]


def test_a_golden_file_that_is_not_yaml_is_a_golden_file_error_at_its_line(
    tmp_path: Path,
) -> None:
    """An unclosed flow list: the YAML problem, located, headlined as the golden file's."""
    path = tmp_path / "g.yaml"
    problems = _golden_problems(path, "now: x\ncases: [\n")
    assert len(problems) == 1
    assert problems[0][1].startswith(f"{path}:")


def test_a_case_s_bad_now_and_a_case_without_any_roster_are_each_one_finding(
    tmp_path: Path,
) -> None:
    """`now: yesterday` at its line; no roster in the case or the file: at the case."""
    path = tmp_path / "g.yaml"
    text = BLOCK_CASE.replace(
        'roster: {snapshot_id: s, taken_at: "2026-11-21T10:00:00Z", agents: []}\n', ""
    ).replace("  - name: flagged\n", "  - name: flagged\n    now: yesterday\n")
    found = [(code, where, case) for code, where, case, _ in _golden_problems(path, text)]
    assert found == [
        ("golden.roster", f"{path}:3:5", "flagged"),  # sorted by line: the case starts at 3
        ("golden.now", f"{path}:4:10", "flagged"),
    ]


def test_a_roster_file_that_is_not_yaml_is_reported_in_that_file(tmp_path: Path) -> None:
    """The roster file's own YAML problem, at its line there (not the golden file's)."""
    (tmp_path / "roster.yaml").write_text("agents: [\n")
    text = BLOCK_CASE.replace(
        'roster: {snapshot_id: s, taken_at: "2026-11-21T10:00:00Z", agents: []}',
        "roster: roster.yaml",
    )
    problems = _golden_problems(tmp_path / "g.yaml", text)
    assert [where.startswith(f"{tmp_path}/roster.yaml:") for _, where, _, _ in problems] == [True]


@pytest.mark.parametrize(
    ("expect", "where", "message"),
    [
        (
            "{outcome: QUEUE, rule: all, excluded: {nurse-fl-1: [licence]}}",
            "6:52",
            (
                "expect.excluded names agent `nurse-fl-1`, who is not on this case's roster (did "
                "you mean `nurse-fl-01`?); name an agent of the roster (agent ids are compared "
                "exactly)"
            ),
        ),
        (
            "{outcome: ASSIGN, rule: all, agent: NURSE-FL-01}",
            "6:49",
            (
                "expect.agent names agent `NURSE-FL-01`, who is not on this case's roster (did "
                "you mean `nurse-fl-01`? only the letter case differs); name an agent of the "
                "roster (agent ids are compared exactly)"
            ),
        ),
        (
            "{outcome: ASSIGN, rule: all, excluded: {NURSE-FL-1: [licence]}}",
            "6:53",
            (
                "expect.excluded names agent `NURSE-FL-1`, who is not on this case's roster (did "
                "you mean `nurse-fl-01`?); name an agent of the roster (agent ids are compared "
                "exactly)"
            ),
        ),
        (
            "{outcome: ASSIGN, rule: all, agent: zzz-99}",
            "6:49",
            (
                "expect.agent names agent `zzz-99`, who is not on this case's roster (its "
                "agents: `billing-01`, `nurse-fl-01`); name an agent of the roster (agent ids are "
                "compared exactly)"
            ),
        ),
        (
            "{outcome: ASSIGN, rule: all, eligible: [nurse-fl-01, nurse-fl-02]}",
            "6:66",
            (
                "expect.eligible names agent `nurse-fl-02`, who is not on this case's roster (did "
                "you mean `nurse-fl-01`?); name an agent of the roster (agent ids are compared "
                "exactly)"
            ),
        ),
    ],
    ids=["excluded", "agent-in-other-letters", "near-in-other-letters", "far", "eligible"],
)
def test_an_expectation_naming_an_agent_off_the_roster_is_refused_at_load(
    tmp_path: Path, expect: str, where: str, message: str
) -> None:
    """golden.unknown_agent, with a did-you-mean, instead of a run failing 'not evaluated'."""
    roster = (
        '{snapshot_id: s, taken_at: "2026-11-21T09:00:00Z", agents: ['
        "{agent_id: nurse-fl-01, status: available, capacity: {max: 1}}, "
        "{agent_id: billing-01, status: available, capacity: {max: 1}}]}"
    )
    (tmp_path / "g.yaml").write_text(
        'cases:\n  - name: c1\n    now: "2026-11-21T10:00:00Z"\n'
        f"    roster: {roster}\n"
        '    case: {case_id: G1, created_at: "2026-11-21T09:00:00Z", channel: phone, '
        "intent: general, urgency: routine}\n"
        f"    expect: {expect}\n"
    )
    with pytest.raises(GoldenFileError) as exc:
        load_golden_file(tmp_path / "g.yaml", ["all"])
    expected = [("golden.unknown_agent", f"{tmp_path}/g.yaml:{where}", "c1", message)]
    assert expected == [(p.code, p.location, p.golden_case, p.message) for p in exc.value.problems]


def _excluding(tmp_path: Path, checks: str) -> Path:
    """A golden file whose one case pins agent nurse-fl-01 excluded by ``checks``."""
    roster = (
        '{snapshot_id: s, taken_at: "2026-11-21T09:00:00Z", agents: ['
        "{agent_id: nurse-fl-01, status: available, capacity: {max: 1}}]}"
    )
    (tmp_path / "g.yaml").write_text(
        'cases:\n  - name: c1\n    now: "2026-11-21T10:00:00Z"\n'
        f"    roster: {roster}\n"
        '    case: {case_id: G1, created_at: "2026-11-21T09:00:00Z", channel: phone, '
        "intent: general, urgency: routine}\n"
        "    expect:\n      outcome: QUEUE\n      rule: all\n"
        f"      excluded: {{nurse-fl-01: {checks}}}\n"
    )
    return tmp_path / "g.yaml"


def test_an_excluded_check_name_that_matching_never_applies_is_refused_at_load(
    tmp_path: Path,
) -> None:
    """golden.unknown_check at each name's file:line:col, with a did-you-mean, not a mismatch."""
    path = _excluding(tmp_path, "[licnce, status, Capacity, zzz]")
    with pytest.raises(GoldenFileError) as exc:
        load_golden_file(path, ["all"])
    checks = "consent, declined, status, role, licence, territory, skills, language, capacity"

    def refused(name: str, hint: str) -> str:
        return (
            f"expect.excluded.nurse-fl-01 names `{name}`, which is not an eligibility check"
            f"{hint}; name the checks the agent must fail, among: {checks}"
        )

    expected = [
        ("golden.unknown_check", f"{path}:9:32", refused("licnce", " (did you mean `licence`?)")),
        (
            "golden.unknown_check",
            f"{path}:9:48",
            refused("Capacity", " (did you mean `capacity`?)"),
        ),
        ("golden.unknown_check", f"{path}:9:58", refused("zzz", "")),
    ]
    assert expected == [(p.code, p.location, p.message) for p in exc.value.problems]


def test_every_check_matching_applies_may_be_named_in_excluded(tmp_path: Path) -> None:
    """The names the engine's matching uses are exactly those a golden file may name."""
    path = _excluding(tmp_path, "[" + ", ".join(CHECK_ORDER) + "]")
    (case,) = load_golden_file(path, ["all"])
    assert frozenset(CHECK_ORDER) == case.expect.excluded["nurse-fl-01"]
