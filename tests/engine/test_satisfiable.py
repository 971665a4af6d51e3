"""Roster lint: requirements no agent on a roster can satisfy, located at the requirement."""

from datetime import date

from caseroute.domain.errors import Problem, Severity
from caseroute.domain.roster import Licence, Role
from caseroute.engine.satisfiable import pinned_values, unsatisfiable_requirements
from caseroute.testing import (
    CATCH_ALL_RULE,
    MINIMAL_HEADER,
    compile_text,
    make_agent,
    make_roster,
    ruleset_with_rules,
)

DAY = date(2026, 11, 21)
NLC = """\
compacts:
  - name: NLC
    licence_types: [RN, LPN]
    members:
      - {jurisdiction: US-TX, since: 2018-01-19}
      - {jurisdiction: US-FL, since: 2018-01-19}
"""
HEADER = MINIMAL_HEADER + NLC
# Lines: 1-9 MINIMAL_HEADER, 10-15 NLC, 16 `rules:`, 17-19 safeguarding, then the rules below.
RULES = """\
  - id: nm-clinical
    when: case.intent == 'clinical' and case.patient_location in ['US-NM', 'US-FL']
    then: {route: {queue: clinical}}
  - id: triage
    when: case.urgency == 'critical'
    then:
      route:
        queue: clinical
        licence: [APRN]
        skills: [{name: clinical-triage, min_level: 3}, {name: paediatrics, min_level: 1}]
        roles: [manager]
  - id: welsh
    when: case.preferred_language == 'cy' and case.region == 'GB-WLS'
    then: {escalate: {queue: general, reason: welsh, assign: {roles: [senior]}}}
"""
TEXT = ruleset_with_rules(RULES + CATCH_ALL_RULE, HEADER)


def _finding(code: str, rule_id: str, line: int, column: int, message: str) -> Problem:
    return Problem(code, message, "r.yaml", line, column, rule_id, Severity.WARNING)


def test_every_kind_of_unsatisfiable_requirement_is_found_where_it_is_written() -> None:
    """Licence, jurisdiction, skill, role, language and territory findings, in rule order."""
    ruleset = compile_text(TEXT, "r.yaml")
    roster = make_roster(
        make_agent("a1", skills={"clinical-triage": 2}),
        make_agent("a2", skills={"clinical-triage": 2}, role=Role.SENIOR),
        make_agent("a3", licences=(Licence("APRN", "US-TX", date(2026, 11, 20)),), skills={"x": 9}),
    )
    expected = [
        _finding(
            "roster.unsatisfiable_jurisdiction",
            "nm-clinical",
            21,
            0,
            "no agent on roster.json has a licence of type RN valid in US-FL on 2026-11-21 "
            "(directly or via the NLC); add one, or check the jurisdiction",
        ),
        _finding(
            "roster.unsatisfiable_jurisdiction",
            "nm-clinical",
            21,
            0,
            "no agent on roster.json has a licence of type RN valid in US-NM on 2026-11-21 "
            "(directly; no compact applies); add one, or check the jurisdiction",
        ),
        _finding(
            "roster.unsatisfiable_licence",
            "triage",
            28,
            18,
            "no agent on roster.json holds an unexpired APRN licence on 2026-11-21 (required "
            "by its licence:), so rule `triage` can never assign anyone; add one, or check the "
            "licence type",
        ),
        _finding(
            "roster.unsatisfiable_role",
            "triage",
            30,
            16,
            "no agent on roster.json has role manager; add one, or widen `roles:`",
        ),
        _finding(
            "roster.unsatisfiable_skill",
            "triage",
            29,
            18,
            "no agent on roster.json has clinical-triage at level 3 or above: the highest "
            "is 2 (a1); add one, or lower min_level",
        ),
        _finding(
            "roster.unsatisfiable_skill",
            "triage",
            29,
            57,
            "no agent on roster.json has paediatrics at level 1 or above: nobody has it at "
            "all; add one, or check the skill name",
        ),
        _finding(
            "roster.unsatisfiable_language",
            "welsh",
            32,
            0,
            "no agent on roster.json speaks cy, which the condition requires; add one, or "
            "set `language: false` on the action",
        ),
        _finding(
            "roster.unsatisfiable_territory",
            "welsh",
            32,
            0,
            "no agent on roster.json has a territory covering GB-WLS, which the condition "
            "requires; add one, or set `territory: false` on the action",
        ),
    ]
    assert expected == unsatisfiable_requirements(ruleset, roster, "roster.json", DAY)


def test_a_multistate_licence_satisfies_a_compact_jurisdiction_and_a_parent_territory() -> None:
    """A TX multistate RN covers US-FL via the NLC; `GB` covers GB-WLS; `cy-GB` speaks cy."""
    rules = RULES.replace("'US-NM', 'US-FL'", "'US-FL'")
    ruleset = compile_text(ruleset_with_rules(rules + CATCH_ALL_RULE, HEADER), "r.yaml")
    roster = make_roster(
        make_agent(
            "a1",
            licences=(
                Licence("RN", "US-TX", date(2030, 1, 1), multistate=True),
                Licence("APRN", "US-TX", date(2026, 11, 21)),
            ),
            skills={"clinical-triage": 3, "paediatrics": 1},
            role=Role.MANAGER,
        ),
        make_agent(
            "a2", territories=frozenset({"GB"}), languages=frozenset({"cy-gb"}), role=Role.SENIOR
        ),
    )
    assert unsatisfiable_requirements(ruleset, roster, "roster.json", DAY) == []


def test_requirements_met_only_by_different_agents_are_one_combination_finding() -> None:
    """An RN with triage 1 and a triage-5 agent without a licence: nobody is both."""
    rules = (
        "  - id: crit\n    when: case.patient_location == 'US-TX' and case.intent == 'clinical'"
        "\n    then: {route: {queue: c, skills: [{name: triage, min_level: 3}]}}\n"
    )
    ruleset = compile_text(ruleset_with_rules(rules + CATCH_ALL_RULE), "r.yaml")
    roster = make_roster(
        make_agent("a1", skills={"triage": 1}),
        make_agent("a2", skills={"triage": 5}, licences=()),
    )
    expected = [
        _finding(
            "roster.unsatisfiable_combination",
            "crit",
            14,
            0,
            "no single agent on roster.json meets all that rule `crit` requires together "
            "(licence RN valid in US-TX; triage >= 3): each is met by someone, never all by "
            "one; add such an agent, or relax a requirement",
        )
    ]
    assert expected == unsatisfiable_requirements(ruleset, roster, "roster.json", DAY)


def test_the_intent_floor_applies_where_the_condition_pins_the_intent() -> None:
    """A rule with no licence: of its own, pinned to clinical, needs the constraint's RN."""
    rules = "  - id: clin\n    when: case.intent == 'clinical'\n    then: {route: {queue: c}}\n"
    ruleset = compile_text(ruleset_with_rules(rules + CATCH_ALL_RULE), "r.yaml")
    roster = make_roster(make_agent("a1", licences=()))
    expected = [
        _finding(
            "roster.unsatisfiable_licence",
            "clin",
            7,
            23,
            "no agent on roster.json holds an unexpired RN licence on 2026-11-21 (required by "
            "constraints.licence.clinical), so rule `clin` can never assign anyone; add one, "
            "or check the licence type",
        )
    ]
    assert expected == unsatisfiable_requirements(ruleset, roster, "roster.json", DAY)


def test_a_rule_licence_outside_the_intent_floor_accepts_nobody() -> None:
    """`licence: [LPN]` under a clinical RN floor can assign no clinical case.

    The rule routes prescriptions too (no floor: an LPN may take them), so it loads: on a
    clinical-only rule the same licence is an error, rules.licence_never_assigns.
    """
    rules = (
        "  - id: clin\n    when: case.intent in ['clinical', 'prescription']\n"
        "    then: {route: {queue: c, licence: [LPN]}}\n"
    )
    ruleset = compile_text(ruleset_with_rules(rules + CATCH_ALL_RULE), "r.yaml")
    expected = [
        _finding(
            "roster.unsatisfiable_licence",
            "clin",
            16,
            39,
            "rule `clin` accepts no licence type at all (its licence: within "
            "constraints.licence.clinical shares none with the hard constraint), so it can "
            "never assign anyone; list a type the constraint allows",
        )
    ]
    lpn = make_agent(licences=(Licence("LPN", "US-TX", date(2030, 1, 1)),))
    actual = unsatisfiable_requirements(ruleset, make_roster(lpn), "roster.json", DAY)
    assert expected == actual


def test_exception_rules_and_open_requirements_are_not_findings() -> None:
    """Open requirements (unpinned location, case skills, exceptions) are not findings."""
    rules = (
        "  - id: exc\n    when: case.urgency == 'routine'\n"
        "    then: {exception: {queue: x, reason: y}}\n"
    )
    ruleset = compile_text(ruleset_with_rules(rules + CATCH_ALL_RULE), "r.yaml")
    assert unsatisfiable_requirements(ruleset, make_roster(), "roster.json", DAY) == []


def test_pinned_values_follow_and_or_and_stop_at_not() -> None:
    """`and` intersects what it pins, `or` unions only when every branch pins, `not` pins none."""
    rules = (
        "  - id: a\n    when: \"case.region in ['X', 'Y'] and (case.region == 'Y' or "
        "case.region == 'Z')\"\n    then: {route: {queue: c}}\n"
        "  - id: b\n    when: \"case.region == 'X' or case.urgency == 'critical'\"\n"
        "    then: {route: {queue: c}}\n"
        "  - id: c\n    when: \"not case.region == 'X'\"\n    then: {route: {queue: c}}\n"
    )
    ruleset = compile_text(ruleset_with_rules(rules + CATCH_ALL_RULE), "r.yaml")
    pinned = [pinned_values(r.when, ruleset.leaves, "case.region") for r in ruleset.rules[1:4]]
    assert [frozenset({"Y"}), None, None] == pinned


def test_a_combination_names_every_requirement_and_ignores_what_is_not_pinned() -> None:
    """Licence for an intent without a floor, role, language and region: nobody has all four."""
    rules = (
        "  - id: es\n"
        "    when: \"case.intent == 'general' and case.preferred_language == 'es' and "
        "case.region == 'US-TX' and case.patient_location != 'US-CA'\"\n"
        "    then: {escalate: {queue: g, reason: r, assign: {licence: [RN], roles: [senior]}}}\n"
    )
    ruleset = compile_text(ruleset_with_rules(rules + CATCH_ALL_RULE), "r.yaml")
    roster = make_roster(  # each fails exactly one: role, licence, language, territory
        make_agent("a1", languages=frozenset({"es-mx"})),
        make_agent("a2", role=Role.SENIOR, languages=frozenset({"es"}), licences=()),
        make_agent("a3", role=Role.SENIOR),
        make_agent("a4", role=Role.SENIOR, languages=frozenset({"es"}), territories=frozenset()),
    )
    expected = [
        _finding(
            "roster.unsatisfiable_combination",
            "es",
            14,
            0,
            "no single agent on roster.json meets all that rule `es` requires together "
            "(licence RN unexpired; role senior; speaks es; territory covering US-TX): each is "
            "met by someone, never all by one; add such an agent, or relax a requirement",
        )
    ]
    assert expected == unsatisfiable_requirements(ruleset, roster, "roster.json", DAY)


def _areas_rule(when: str, areas: str = "") -> str:
    """A ruleset whose rule `england` (its `when` on line 21) routes by territory."""
    rules = f'  - id: england\n    when: "{when}"\n    then: {{route: {{queue: general}}}}\n'
    return ruleset_with_rules(rules + CATCH_ALL_RULE, HEADER + areas)


def test_an_area_the_condition_requires_in_region_areas_that_nobody_covers_is_found() -> None:
    """`'GB-ENG' in case.region_areas` with only Texas and Scotland agents: never assigned.

    Only `case.region ==` was checked; a rule written with region_areas drew no finding.
    """
    ruleset = compile_text(_areas_rule("'GB-ENG' in case.region_areas"), "r.yaml")
    roster = make_roster(
        make_agent("a1"), make_agent("a2", territories=frozenset({"GB-SCT", "GB-EDH"}))
    )
    expected = [
        _finding(
            "roster.unsatisfiable_territory",
            "england",
            21,
            0,
            "no agent on roster.json has a territory covering GB-ENG or an area within it, "
            "which the condition requires of case.region_areas; add one, or set "
            "`territory: false` on the action",
        )
    ]
    assert expected == unsatisfiable_requirements(ruleset, roster, "roster.json", DAY)


def test_an_agent_covering_the_area_an_area_within_it_or_a_larger_one_serves_it() -> None:
    """GB (larger), GB-ENG itself, GB-KEN (ISO, within) and E54000027 (areas:) each serve."""
    ruleset = compile_text(
        _areas_rule(
            "'GB-ENG' in case.region_areas and 'Y56' in case.region_areas",
            "areas:\n  E54000027: Y56\n  Y56: GB-ENG\n",
        ),
        "r.yaml",
    )
    nothing: list[Problem] = []
    for territory in ("GB", "GB-ENG", "E54000027"):
        roster = make_roster(make_agent("a1", territories=frozenset({territory})))
        assert nothing == unsatisfiable_requirements(ruleset, roster, "roster.json", DAY)
    kent = make_roster(make_agent("a1", territories=frozenset({"GB-KEN"})))
    (found,) = unsatisfiable_requirements(ruleset, kent, "roster.json", DAY)
    assert "covering Y56 or an area within it" in found.message  # Kent is not within Y56


def test_region_areas_of_only_some_branches_or_territory_off_is_no_finding() -> None:
    """A branch not testing region_areas may assign anywhere; `territory: false` ignores it."""
    roster = make_roster(make_agent("a1"))
    nothing: list[Problem] = []
    for text in (
        _areas_rule("'GB-ENG' in case.region_areas or case.urgency == 'critical'"),
        _areas_rule("not 'GB-ENG' in case.region_areas"),
        _areas_rule("'GB-ENG' in case.region_areas").replace(
            "{route: {queue: general}}", "{route: {queue: general, territory: false}}", 1
        ),
    ):
        assert nothing == unsatisfiable_requirements(
            compile_text(text, "r.yaml"), roster, "roster.json", DAY
        )


def test_a_required_area_counts_in_the_combination_check() -> None:
    """A Welsh speaker in Texas and an English speaker in England: nobody is both."""
    ruleset = compile_text(
        _areas_rule("'GB-ENG' in case.region_areas and case.preferred_language == 'cy'"),
        "r.yaml",
    )
    roster = make_roster(
        make_agent("a1", languages=frozenset({"cy"})),
        make_agent("a2", languages=frozenset({"en"}), territories=frozenset({"GB-ENG"})),
    )
    (found,) = unsatisfiable_requirements(ruleset, roster, "roster.json", DAY)
    expected = "roster.unsatisfiable_combination"
    assert expected == found.code
    assert "speaks cy; territory covering GB-ENG or an area within it" in found.message
