"""The structural ruleset diff: what two versions differ in, located, and how it reads."""

from dataclasses import fields, replace
from datetime import date
from pathlib import Path

import pytest

from caseroute.rules import model
from caseroute.rules.compiler import load_ruleset
from caseroute.rules.diff import (
    COMPARED_FIELDS,
    IGNORED_FIELDS,
    Change,
    ChangeKind,
    RulesetDiff,
    Section,
    diff_rulesets,
)
from caseroute.rules.diff_render import describe_change, render_diff_markdown, render_diff_text
from caseroute.rules.model import CompiledRuleset
from caseroute.testing import (
    CATCH_ALL_RULE,
    REPO_ROOT,
    compile_text,
    ruleset_with_rules,
)

FIXTURES = Path("tests/rules/diff_fixtures")  # relative: the expected output names the files
OLD = f"{FIXTURES}/old/ruleset.yaml"
NEW = f"{FIXTURES}/new/ruleset.yaml"
OLD_SHA = "43f3797cd9026143ddcbe4fb4c902e2e0761f9dbb6da362f6b8760ad4d90bfb7"
NEW_SHA = "eedd5e5a5d5ba627a3cb6e7439434276c930d8a98dd021c9f2c543294558cf23"

EXPECTED_TEXT = [
    f"old: diff-demo 1.0.0 ({OLD}, sha256 {OLD_SHA})",
    f"new: diff-demo 1.1.0 ({NEW}, sha256 {NEW_SHA})",
    "metadata:",
    f"  ~ version: 1.0.0 -> 1.1.0  ({NEW}:3)  (no effect on decisions)",
    (
        '  ~ description: "Diff fixture, the version before." -> "Diff fixture, the version after."'
        f"  ({NEW}:4)  (no effect on decisions)"
    ),
    f"  ~ sha256: {OLD_SHA} -> {NEW_SHA}  (no effect on decisions)",
    "params:",
    f"  ~ negative_sentiment: -0.5 -> -0.4  ({NEW}:8)",
    f"  + vip_flag: added vip  ({NEW}:10)",
    f"  - retired_limit: removed (was 3)  ({OLD}:10)",
    "signals:",
    f"  ~ sla_at_risk_minutes: 60 -> 45  ({NEW}:13)",
    f"  ~ negative_sentiment: -0.5 -> -0.4  ({NEW}:14)",
    "attributes:",
    f"  + member_years: added number  ({NEW}:18)",
    "constraints:",
    f"  ~ safeguarding.queue: safeguarding -> safeguarding-team  ({NEW}:21)",
    f"  ~ consent.flag: (none) -> consent_missing  ({NEW}:22)",
    f"  + licence.prescription: added [pharmacist]  ({NEW}:25)",
    "compacts:",
    f"  ~ NLC licence_types: [LPN, RN] -> [RN]  ({NEW}:29)",
    f"  ~ NLC members.US-TX.since: 2018-01-19 -> 2018-02-01  ({NEW}:32)",
    f"  ~ NLC members.US-NJ.until: (none) -> 2026-12-31  ({NEW}:33)",
    f"  + NLC members.US-PA: added {{since: 2025-07-07, until: (none)}}  ({NEW}:34)",
    f"  - NLC members.US-XX: removed (was {{since: 2019-05-01, until: (none)}})  ({OLD}:31)",
    (
        "  + APRN: added {licence_types: [APRN], members: {US-DE: {since: 2024-01-01, until: "
        f"(none)}}}}}}  ({NEW}:35)"
    ),
    (
        "  - OLD: removed (was {licence_types: [PT], members: {US-AZ: {since: 2017-01-01, until: "
        f"(none)}}}}}})  ({OLD}:32)"
    ),
    "matching:",
    (
        "  ~ ranking: [lowest_utilisation, highest_skill_level, longest_idle] -> "
        f"[lowest_utilisation, longest_idle]  ({NEW}:42)"
    ),
    "queues:",
    f"  ~ complaint: complaints -> complaints-team  ({NEW}:49)",
    "rules:",
    f"  ~ rule safeguarding escalate.queue: safeguarding -> safeguarding-team  ({NEW}:56)",
    f"  ~ rule missing-patient-location exception.queue: exceptions -> data-exceptions  ({NEW}:62)",
    (
        "  > rule prescription: moved from position 6 to 3 (the first rule that applies decides)"
        f"  ({NEW}:64)"
    ),
    f"  ~ rule prescription priority: normal -> high  ({NEW}:68)",
    (
        '  ~ rule unhappy-sla-at-risk when: "sentiment.latest <= params.negative_sentiment and '
        "sla.risk in ['at_risk', 'breached']\" (same text, new meaning: a param it reads changed)"
        f"  ({NEW}:71)"
    ),
    f"  ~ rule unhappy-sla-at-risk escalate.level: 2 -> 3  ({NEW}:75)",
    (
        "  ~ rule unhappy-sla-at-risk escalate.assign.roles: [senior] -> [senior, manager]"
        f"  ({NEW}:77)"
    ),
    (
        "  = rule critical-clinical when: reworded, same meaning: \"case.intent == 'clinical' and "
        "case.urgency == 'critical'\" -> \"case.intent=='clinical'  and  case.urgency == "
        f"'critical'\"  ({NEW}:81)  (no effect on decisions)"
    ),
    (
        "  ~ rule critical-clinical then: {route: {queue: clinical-urgent, reason: "
        "critical_clinical, licence: [RN], skills: [{name: clinical-triage, min_level: 3}], "
        "case_skills: true, territory: true, language: true, roles: (none)}} -> {escalate: "
        "{queue: clinical-urgent, level: 1, reason: critical_clinical, assign: (none)}}"
        f"  ({NEW}:83)"
    ),
    (
        "  ~ rule clinical when: \"case.intent == 'clinical'\" -> \"case.intent == 'clinical' and "
        f"case.urgency != 'routine'\"  ({NEW}:90)"
    ),
    f"  ~ rule clinical route.licence: [RN] -> [RN, LPN]  ({NEW}:92)",
    f"  + rule vip-complaint: added at position 7  ({NEW}:94)",
    (
        '  ~ rule by-intent description: "Everything else goes to the team for its intent." -> '
        '"Everything else goes to its intent\'s team; no licence needed."  '
        f"({NEW}:101)  (no effect on decisions)"
    ),
    f"  - rule billing-dispute: removed (was at position 7)  ({OLD}:91)",
    "30 semantic change(s), 5 other change(s)",
]


@pytest.fixture
def fixture_diff(monkeypatch: pytest.MonkeyPatch) -> RulesetDiff:
    """The diff of the fixture pair, loaded by paths relative to the repository."""
    monkeypatch.chdir(REPO_ROOT)
    return diff_rulesets(load_ruleset(FIXTURES / "old"), load_ruleset(FIXTURES / "new"))


def test_fixture_pair_text(fixture_diff: RulesetDiff) -> None:
    """Every change kind reads as one located line, grouped by section, with a summary."""
    expected = EXPECTED_TEXT
    assert expected == render_diff_text(fixture_diff)


def test_fixture_pair_differs(fixture_diff: RulesetDiff) -> None:
    """The fixture pair differs in meaning: 30 semantic changes, and the sha256 differs."""
    expected = (True, True, 30)
    assert expected == (
        fixture_diff.differs,
        fixture_diff.sha256_differs,
        len(fixture_diff.semantic_changes),
    )


def test_moved_rule_as_data(fixture_diff: RulesetDiff) -> None:
    """A moved rule is data: section, kind, old and new 1-based position, NEW file:line."""
    moved = [c for c in fixture_diff.changes if c.kind is ChangeKind.MOVED]
    assert [
        Change(Section.RULES, ChangeKind.MOVED, "prescription", "position", 6, 3, f"{NEW}:64")
    ] == moved


def _variant(text: str, path: str) -> CompiledRuleset:
    return compile_text(text, path)


BASE = ruleset_with_rules(
    """\
  - id: clinical
    when: case.intent == 'clinical'
    then: {route: {queue: clinical, licence: [RN]}}
  - id: billing
    when: case.intent == 'billing'
    then: {route: {queue: billing}}
"""
    + CATCH_ALL_RULE
)


def test_whitespace_and_comments_only() -> None:
    """Comments, blank lines and flow-vs-block layout: no semantic changes, sha256 differs."""
    reflowed = BASE.replace("rules:\n", "# the rules, in order\nrules:\n\n").replace(
        "    then: {route: {queue: billing}}\n",
        "    then:\n      route:\n        queue: billing   # billing team\n",
    )
    old, new = _variant(BASE, "a.yaml"), _variant(reflowed, "b.yaml")
    diff = diff_rulesets(old, new)
    expected_flags = (False, True)
    assert expected_flags == (diff.differs, diff.sha256_differs)
    expected = [
        f"old: test 1 (a.yaml, sha256 {old.sha256})",
        f"new: test 1 (b.yaml, sha256 {new.sha256})",
        "metadata:",
        f"  ~ sha256: {old.sha256} -> {new.sha256}  (no effect on decisions)",
        "no semantic changes (only whitespace, comments or layout); the sha256 differs",
    ]
    assert expected == render_diff_text(diff)


def test_identical_files() -> None:
    """The same text twice: no changes at all."""
    diff = diff_rulesets(_variant(BASE, "a.yaml"), _variant(BASE, "b.yaml"))
    expected = ((), "no changes: the two files are identical")
    assert expected == (
        diff.changes,
        render_diff_text(diff)[-1],
    )


def test_insertion_moves_nothing() -> None:
    """A rule inserted early shifts positions but is the only change: nothing 'moved'."""
    inserted = BASE.replace(
        "  - id: clinical\n",
        "  - id: general\n    when: case.intent == 'general'\n"
        "    then: {route: {queue: general}}\n  - id: clinical\n",
    )
    diff = diff_rulesets(_variant(BASE, "a.yaml"), _variant(inserted, "b.yaml"))
    expected = [("general", ChangeKind.ADDED, None, 2)]
    assert expected == [
        (c.subject, c.kind, c.old, c.new) for c in diff.changes if c.section is Section.RULES
    ]


def test_swapped_rules_report_one_move() -> None:
    """Two adjacent rules swapped: one of them (the later one) is reported moved, both positions."""
    swapped = BASE.replace(
        "  - id: clinical\n    when: case.intent == 'clinical'\n"
        "    then: {route: {queue: clinical, licence: [RN]}}\n",
        "",
    ).replace(
        "  - id: rest\n",
        "  - id: clinical\n    when: case.intent == 'clinical'\n"
        "    then: {route: {queue: clinical, licence: [RN]}}\n  - id: rest\n",
    )
    diff = diff_rulesets(_variant(BASE, "a.yaml"), _variant(swapped, "b.yaml"))
    expected = [("billing", ChangeKind.MOVED, 3, 2, "b.yaml:14")]
    assert expected == [
        (c.subject, c.kind, c.old, c.new, c.location) for c in diff.changes if c.semantic
    ]


def test_queue_map_change_is_reported_once() -> None:
    """A `queues:` entry change is one queues change, not a change of every by_intent rule."""
    changed = BASE.replace("billing: billing,", "billing: billing-team,")
    diff = diff_rulesets(_variant(BASE, "a.yaml"), _variant(changed, "b.yaml"))
    expected = [(Section.QUEUES, "billing", "billing", "billing-team")]
    assert expected == [(c.section, c.subject, c.old, c.new) for c in diff.changes if c.semantic]


def test_boolean_never_equals_number() -> None:
    """A param changed from 1 to true is a change (Python's True == 1 must not hide it)."""
    old = BASE.replace("owner: tests\n", "owner: tests\nparams: {limit: 1}\n")
    new = BASE.replace("owner: tests\n", "owner: tests\nparams: {limit: true}\n")
    diff = diff_rulesets(_variant(old, "a.yaml"), _variant(new, "b.yaml"))
    expected = [("limit", 1, True)]
    assert expected == [(c.subject, c.old, c.new) for c in diff.changes if c.semantic]


def test_every_compiled_field_is_classified() -> None:
    """Each CompiledRuleset field is compared or deliberately ignored (a new one needs a look)."""
    assert {f.name for f in fields(CompiledRuleset)} == COMPARED_FIELDS | IGNORED_FIELDS


def test_markdown_heading_and_a_rule_line(fixture_diff: RulesetDiff) -> None:
    """Markdown puts names and values in code spans and marks non-semantic changes."""
    lines = render_diff_markdown(fixture_diff)
    assert (
        "### Ruleset diff: `diff-demo` `1.0.0` → `1.1.0`",
        (
            f"- rule `prescription`: moved from position `6` to `3` (the first rule that applies "
            f"decides) (`{NEW}:64`)"
        ),
    ) == (lines[0], next(line for line in lines if "moved from" in line))


def test_markdown_code_span_holds_backticks() -> None:
    """A value with backticks gets a longer fence, so the comment renders it literally."""
    old = BASE.replace("owner: tests", "owner: a`b")
    diff = diff_rulesets(_variant(BASE, "a.yaml"), _variant(old, "b.yaml"))
    assert "- `owner`: `tests` -> ``a`b`` (`b.yaml:4`) _(no effect on decisions)_" in (
        render_diff_markdown(diff)
    )


COMPACT_HEADER = BASE.replace(
    "queues:",
    "compacts:\n"
    "  - name: NLC\n"
    "    licence_types: [RN]\n"
    "    members:\n"
    "      - {jurisdiction: US-TX, since: 2018-01-19, until: 2019-12-31}\n"
    "      - {jurisdiction: US-TX, since: 2021-01-01}\n"
    "queues:",
)


def test_member_listed_twice_first_period_changed() -> None:
    """A jurisdiction with two membership periods: a change to the first one is a change."""
    changed = COMPACT_HEADER.replace("until: 2019-12-31", "until: 2020-12-31")
    diff = diff_rulesets(_variant(COMPACT_HEADER, "a.yaml"), _variant(changed, "b.yaml"))
    expected = [
        (
            "NLC",
            "members.US-TX",
            [
                {"since": "2018-01-19", "until": "2019-12-31"},
                {"since": "2021-01-01", "until": None},
            ],
            [
                {"since": "2018-01-19", "until": "2020-12-31"},
                {"since": "2021-01-01", "until": None},
            ],
            "b.yaml:12",
        )
    ]
    assert expected == [
        (c.subject, c.field, c.old, c.new, c.location) for c in diff.semantic_changes
    ]


def test_compact_named_twice_first_changed() -> None:
    """Two compacts with one name: a change to the first is a change, not hidden by the second.

    The schema refuses a name used twice (review M4), so these are built in code, as a
    caller of the library may.
    """
    second = model.Compact(
        "NLC", frozenset({"LPN"}), (model.CompactMember("US-AZ", date(2018, 1, 19)),)
    )
    before = _variant(COMPACT_HEADER, "a.yaml")
    after = _variant(
        COMPACT_HEADER.replace("licence_types: [RN]", "licence_types: [APRN]"), "b.yaml"
    )
    twice = replace(before, compacts=(*before.compacts, second))
    changed = replace(after, compacts=(*after.compacts, second))
    diff = diff_rulesets(twice, changed)
    expected = [("NLC", "licence_types", ["RN"], ["APRN"])]
    assert expected == [(c.subject, c.field, c.old, c.new) for c in diff.semantic_changes]


def test_every_compared_part_has_known_fields() -> None:
    """The parts the diff reads field by field have these fields; a new one fails here first."""
    expected = {
        "Rule": {"rule_id", "description", "when", "when_text", "action", "priority", "line"},
        "RouteAction": {"queue", "requirements", "reason"},
        "EscalateAction": {"queue", "level", "reason", "assign"},
        "ExceptionAction": {"queue", "reason"},
        "Requirements": {
            "licence_types",
            "skills",
            "case_skills",
            "territory",
            "language",
            "roles",
            "soft",
            "prefer",
            "ladder",
            "continuity",
        },
        "Constraints": {
            "safeguarding_flag",
            "safeguarding_queue",
            "consent_flag",
            "licence_by_intent",
        },
        "SignalSettings": {"sla_at_risk_minutes", "negative_sentiment", "sentiment_window"},
        "Compact": {"name", "licence_types", "members"},
        "CompactMember": {"jurisdiction", "since", "until"},
    }
    assert expected == {
        kind.__name__: {f.name for f in fields(kind)}
        for kind in (
            model.Rule,
            model.RouteAction,
            model.EscalateAction,
            model.ExceptionAction,
            model.Requirements,
            model.Constraints,
            model.SignalSettings,
            model.Compact,
            model.CompactMember,
        )
    }


def test_text_tells_a_string_from_a_number_boolean_or_none() -> None:
    """A string that reads as a number, boolean or (none) is quoted, so `"1" -> 1` shows."""
    old = BASE.replace(
        "owner: tests\n", 'owner: tests\nparams: {a: "1", b: "true", c: "(none)", d: x->y}\n'
    )
    new = BASE.replace("owner: tests\n", "owner: tests\nparams: {a: 1, b: true, c: none, d: z}\n")
    diff = diff_rulesets(_variant(old, "a.yaml"), _variant(new, "b.yaml"))
    expected = [
        'a: "1" -> 1',
        'b: "true" -> true',
        'c: "(none)" -> none',
        'd: "x->y" -> z',
    ]
    assert expected == [describe_change(c) for c in diff.semantic_changes]
