"""`rules diff` of relaxation ladders, continuity of care and a rule's soft/prefer/ladder."""

from dataclasses import fields

from caseroute.rules import model
from caseroute.rules.diff import Change, ChangeKind, Section, diff_rulesets
from caseroute.rules.diff_render import diff_as_data, render_diff_markdown, render_diff_text
from caseroute.testing import MINIMAL_HEADER, compile_text, ruleset_with_rules

STEPS = """\
    - step: any-language
      after: {routine: 10m, urgent: 10m}
      prefer: [language]
      why: A nurse with an interpreter beats a longer wait.
    - step: any-territory
      after: 30m
      relax: [territory]
      why: Anyone licensed will do after half an hour.
"""
CONTINUITY = """\
continuity:
  window: 365d
  hold: {routine: 15m}
"""
RULES = """\
  - id: senior
    when: sentiment.latest <= -0.5
    then:
      escalate:
        queue: senior
        reason: unhappy
        assign: {roles: [senior], soft: [language, territory], ladder: lang}
  - id: rest
    when: true
    then: {route: {queue: by_intent, soft: [language, territory], ladder: lang}}
"""
BASE = ruleset_with_rules(RULES, f"{MINIMAL_HEADER}ladders:\n  lang:\n{STEPS}{CONTINUITY}")


def _lines(old: str, new: str) -> list[str]:
    """The diff's change lines (without the two header lines, the sha256 line and summary)."""
    diff = diff_rulesets(compile_text(old, "old.yaml"), compile_text(new, "new.yaml"))
    return [line for line in render_diff_text(diff)[2:-1] if "sha256" not in line]


def test_step_delays_per_urgency_relax_prefer_and_why() -> None:
    """Delay per urgency in minutes (`never` when absent), relax/prefer sets; why not semantic."""
    new = (
        BASE.replace("after: {routine: 10m, urgent: 10m}", "after: {routine: 5m, critical: 0m}")
        .replace("prefer: [language]\n", "relax: [language]\n")
        .replace("why: Anyone licensed", "why: Anybody licensed")
    )
    assert _lines(BASE, new) == [
        "metadata:",
        "ladders:",
        "  ~ ladder lang step any-language after.routine: 10 min -> 5 min  (new.yaml:13)",
        "  ~ ladder lang step any-language after.urgent: 10 min -> never  (new.yaml:13)",
        "  ~ ladder lang step any-language after.critical: never -> 0 min  (new.yaml:13)",
        "  ~ ladder lang step any-language relax: [] -> [language]  (new.yaml:14)",
        "  ~ ladder lang step any-language prefer: [language] -> []  (new.yaml:12)",
        (
            '  ~ ladder lang step any-territory why: "Anyone licensed will do after half an hour."'
            ' -> "Anybody licensed will do after half an hour."  (new.yaml:19)  '
            "(no effect on decisions)"
        ),
    ]


def _reordered() -> str:
    """STEPS with any-territory first and taking effect at once."""
    language, territory = STEPS.split("    - step: any-territory\n")
    return "    - step: any-territory\n" + territory.replace("after: 30m", "after: 0m") + language


def test_steps_reordered_is_a_move() -> None:
    """Steps are matched by name: a step listed earlier is a move with old and new positions."""
    assert _lines(BASE, BASE.replace(STEPS, _reordered())) == [
        "metadata:",
        "ladders:",
        (
            "  > ladder lang step any-territory: moved from position 2 to 1 (steps take effect "
            "in ladder order)  (new.yaml:12)"
        ),
        "  ~ ladder lang step any-territory after.routine: 30 min -> 0 min  (new.yaml:13)",
        "  ~ ladder lang step any-territory after.urgent: 30 min -> 0 min  (new.yaml:13)",
        "  ~ ladder lang step any-territory after.critical: 30 min -> 0 min  (new.yaml:13)",
    ]


def test_step_renamed_is_removed_and_added_with_every_field() -> None:
    """A step under a new name is an addition (in NEW) and a removal (located in OLD)."""
    new = BASE.replace("- step: any-language", "- step: spoken-language")
    step = (
        'after: {routine: 10, urgent: 10}, relax: [], prefer: [language], why: "A nurse with '
        'an interpreter beats a longer wait."}'
    )
    assert _lines(BASE, new) == [
        "metadata:",
        "ladders:",
        (
            f"  + ladder lang step spoken-language: added {{step: spoken-language, {step}  "
            "(new.yaml:12)"
        ),
        (
            f"  - ladder lang step any-language: removed (was {{step: any-language, {step})  "
            "(old.yaml:12)"
        ),
    ]


def test_continuity_window_and_hold_per_urgency() -> None:
    """Window in days, hold per urgency in minutes; an urgency left out is held 0 minutes."""
    new = BASE.replace("window: 365d", "window: 180d").replace(
        "hold: {routine: 15m}", "hold: {routine: 20m, urgent: 5m, critical: 0m}"
    )
    assert _lines(BASE, new) == [
        "metadata:",
        "continuity:",
        "  ~ continuity window_days: 365 days -> 180 days  (new.yaml:21)",
        "  ~ continuity hold.routine: 15 min -> 20 min  (new.yaml:22)",
        "  ~ continuity hold.urgent: 0 min -> 5 min  (new.yaml:22)",
    ]
    same = BASE.replace("hold: {routine: 15m}", "hold: {routine: 15m, critical: 0m}")
    diff = diff_rulesets(compile_text(BASE, "old.yaml"), compile_text(same, "new.yaml"))
    assert (diff.differs, diff.sha256_differs) == (False, True)


def test_ladder_and_continuity_added_and_removed_whole() -> None:
    """A ruleset gaining a ladder and continuity lists each whole, and the rules that use them."""
    plain = ruleset_with_rules(RULES.replace(", soft: [language, territory], ladder: lang", ""))
    assert _lines(plain, BASE) == [
        "metadata:",
        "ladders:",
        (
            "  + ladder lang: added [{step: any-language, after: {routine: 10, urgent: 10}, "
            'relax: [], prefer: [language], why: "A nurse with an interpreter beats a longer '
            'wait."}, {step: any-territory, after: {routine: 30, urgent: 30, critical: 30}, '
            'relax: [territory], prefer: [], why: "Anyone licensed will do after half an '
            'hour."}]  (new.yaml:11)'
        ),
        "continuity:",
        (
            "  + continuity: added {window_days: 365, hold.routine: 15, hold.urgent: 0, "
            "hold.critical: 0}  (new.yaml:20)"
        ),
        "rules:",
        "  ~ rule senior escalate.assign.soft: [] -> [language, territory]  (new.yaml:33)",
        "  ~ rule senior escalate.assign.ladder: (none) -> lang  (new.yaml:33)",
        "  ~ rule rest route.soft: [] -> [language, territory]  (new.yaml:36)",
        "  ~ rule rest route.ladder: (none) -> lang  (new.yaml:36)",
    ]
    diff = diff_rulesets(compile_text(plain, "old.yaml"), compile_text(BASE, "new.yaml"))
    assert [(c.section, c.kind, c.subject, c.field) for c in diff.semantic_changes] == [
        (Section.LADDERS, ChangeKind.ADDED, "lang", ""),
        (Section.CONTINUITY, ChangeKind.ADDED, "continuity", ""),
        (Section.RULES, ChangeKind.CHANGED, "senior", "escalate.assign.soft"),
        (Section.RULES, ChangeKind.CHANGED, "senior", "escalate.assign.ladder"),
        (Section.RULES, ChangeKind.CHANGED, "rest", "route.soft"),
        (Section.RULES, ChangeKind.CHANGED, "rest", "route.ladder"),
    ]
    back = diff_rulesets(compile_text(BASE, "old.yaml"), compile_text(plain, "new.yaml"))
    assert [c for c in back.changes if c.section is Section.CONTINUITY] == [
        Change(
            Section.CONTINUITY,
            ChangeKind.REMOVED,
            "continuity",
            "",
            {"window_days": 365.0, "hold.routine": 15.0, "hold.urgent": 0.0, "hold.critical": 0.0},
            None,
            "old.yaml:20",
        )
    ]


def test_rule_prefer_and_continuity_switch() -> None:
    """A rule's `prefer` and `continuity: false` are changes of its action, located at it."""
    new = BASE.replace(
        "soft: [language, territory], ladder: lang}}",
        "soft: [language, territory], prefer: [skills], ladder: lang, continuity: false}}",
    )
    assert _lines(BASE, new) == [
        "metadata:",
        "rules:",
        "  ~ rule rest route.prefer: [] -> [skills]  (new.yaml:36)",
        "  ~ rule rest route.continuity: true -> false  (new.yaml:36)",
    ]


def test_json_keeps_minutes_as_numbers_and_markdown_names_the_step() -> None:
    """JSON carries the delay in minutes (null: never); markdown puts names in code spans."""
    new = BASE.replace("after: {routine: 10m, urgent: 10m}", "after: {routine: 5m}")
    diff = diff_rulesets(compile_text(BASE, "old.yaml"), compile_text(new, "new.yaml"))
    data = diff_as_data(diff)
    assert data["changes"] == [
        {
            "section": "metadata",
            "kind": "changed",
            "subject": "sha256",
            "field": "",
            "old": diff.old.sha256,
            "new": diff.new.sha256,
            "location": "",
            "semantic": False,
        },
        {
            "section": "ladders",
            "kind": "changed",
            "subject": "lang",
            "field": "steps.any-language.after.routine",
            "old": 10.0,
            "new": 5.0,
            "location": "new.yaml:13",
            "semantic": True,
        },
        {
            "section": "ladders",
            "kind": "changed",
            "subject": "lang",
            "field": "steps.any-language.after.urgent",
            "old": 10.0,
            "new": None,
            "location": "new.yaml:13",
            "semantic": True,
        },
    ]
    assert render_diff_markdown(diff)[-4:] == [
        "#### ladders",
        "",
        (
            "- ladder `lang` step `any-language` `after.routine`: `10 min` -> `5 min` "
            "(`new.yaml:13`)"
        ),
        ("- ladder `lang` step `any-language` `after.urgent`: `10 min` -> `never` (`new.yaml:13`)"),
    ]


def test_every_adaptive_part_has_known_fields() -> None:
    """The diff reads these ladder and continuity fields; a new one fails here first."""
    assert {
        kind.__name__: {f.name for f in fields(kind)}
        for kind in (model.Ladder, model.LadderStep, model.ContinuityPolicy)
    } == {
        "Ladder": {"name", "steps", "line"},
        "LadderStep": {"name", "after", "relax", "prefer", "why", "line"},
        "ContinuityPolicy": {"window_days", "hold_minutes", "line"},
    }
