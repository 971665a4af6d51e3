"""Territory coverage through the areas a region lies within: ISO 3166-2 parents and `areas:`.

Coverage was a string prefix, so an agent covering ``GB-ENG`` did not cover a case in
``GB-KEN`` (Kent, an ISO 3166-2 council code in England) and the case queued for nobody; NHS
commissioning areas (``E54000027`` within ``Y56`` within ``GB-ENG``) could not be related at all.
"""

from __future__ import annotations

from datetime import date

import pytest

from caseroute.domain.case import Intent
from caseroute.domain.decision import Decision, Outcome
from caseroute.domain.errors import RulesetError, Severity
from caseroute.domain.roster import Licence
from caseroute.engine.case_rules import EngineKind, LoadedRuleset, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.engine.matching import build_need, check_agent, check_masks
from caseroute.engine.roster_index import index_for
from caseroute.engine.satisfiable import unsatisfiable_requirements
from caseroute.render import render_text
from caseroute.rules.model import Requirements
from caseroute.testing import (
    ADAPTIVE_HEADER,
    MINIMAL_HEADER,
    NOW,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

LATER = date(2030, 1, 1)
GENERAL = """\
  - id: rest
    when: true
    then: {route: {queue: general}}
"""
NHS_AREAS = """\
areas:
  E54000027: Y56   # North Central London ICB, in NHS England London
  Y56: GB-ENG      # NHS England London, in England
  GB-KEN: Y59      # Kent, in NHS England South East (ISO puts it in England: so is Y59)
  Y59: GB-ENG
"""


def _ruleset(header: str = MINIMAL_HEADER, rules: str = GENERAL) -> LoadedRuleset:
    return prepare_ruleset(compile_text(ruleset_with_rules(rules, header)), EngineKind.PYTHON)


def _general(region: str, *territories: str, header: str = MINIMAL_HEADER) -> Decision:
    """A general enquiry in ``region``, one agent per territory (agent ids t0, t1, ...)."""
    agents = [make_agent(f"t{n}", territories=frozenset({t})) for n, t in enumerate(territories)]
    case = make_case(intent=Intent.GENERAL, region=region, patient_location=None)
    return decide(case, make_roster(*agents), _ruleset(header), NOW)


@pytest.mark.parametrize(
    ("territory", "region"),
    [
        ("GB-ENG", "GB-KEN"),
        ("GB-ENG", "GB-LND"),
        ("GB-ENG", "GB-MAN"),
        ("GB-SCT", "GB-EDH"),
        ("GB-WLS", "GB-CRF"),
        ("GB-NIR", "GB-BFS"),
        ("FR-IDF", "FR-75C"),
        ("ES-CT", "ES-B"),
        ("IT-25", "IT-MI"),
    ],
)
def test_a_nation_or_region_covers_the_iso_subdivisions_within_it(
    territory: str, region: str
) -> None:
    """An agent covering a subdivision is assigned a case in one of its ISO 3166-2 children."""
    decision = _general(region, territory)
    assert (decision.outcome, decision.agent_id) == (Outcome.ASSIGN, "t0")


@pytest.mark.parametrize(("territory", "region"), [("GB-ENG", "GB-EDH"), ("GB-SCT", "GB-BFS")])
def test_a_nation_does_not_cover_another_nations_councils(territory: str, region: str) -> None:
    """Edinburgh is not in England, Belfast not in Scotland: the case queues."""
    assert _general(region, territory).outcome is Outcome.QUEUE


def test_the_country_still_covers_a_council_and_a_sub_code_still_covers_by_prefix() -> None:
    """`GB` covers GB-KEN (its prefix), GB-KEN covers GB-KEN-X, and GB-ENG covers it too."""
    assert [
        _general(region, territory).outcome
        for region, territory in (("GB-KEN", "GB"), ("GB-KEN-X", "GB-KEN"), ("GB-KEN-X", "GB-ENG"))
    ] == [Outcome.ASSIGN] * 3


def test_the_explanation_says_which_area_the_region_lies_within() -> None:
    """The requirement names the step and its source; an excluded agent's reason keeps its form."""
    text = render_text(_general("GB-KEN", "GB-SCT", "GB-ENG")).splitlines()
    expected = [
        (
            "  requirements: status: available; territory: covers GB-KEN (GB-KEN lies within "
            "GB-ENG by ISO 3166-2); capacity: active < max"
        ),
        "  excluded by: territory 1",
        "  x t0: territory: needs territory covering GB-KEN, has GB-SCT",
    ]
    assert expected == [line for line in text if "territory" in line]


def test_a_region_within_nothing_is_explained_as_before() -> None:
    """A code with no ISO parent and no ruleset area reads `territory: covers US-TX`."""
    text = render_text(_general("US-TX", "US-TX"))
    assert "territory: covers US-TX; " in text


def test_ruleset_areas_nest_nhs_commissioning_codes_within_a_nation() -> None:
    """An ICB within an NHS region within England: a GB-ENG or Y56 agent covers it."""
    outcomes = [
        (_general("E54000027", t, header=MINIMAL_HEADER + NHS_AREAS).agent_id, t)
        for t in ("GB-ENG", "Y56", "GB", "E54000027", "Y59")
    ]
    assert outcomes == [
        ("t0", "GB-ENG"),
        ("t0", "Y56"),
        ("t0", "GB"),
        ("t0", "E54000027"),
        (None, "Y59"),
    ]


def test_ruleset_areas_are_explained_step_by_step() -> None:
    """Each step the ruleset added is named with its source, nearest first."""
    decision = _general("E54000027", "GB-ENG", header=MINIMAL_HEADER + NHS_AREAS)
    assert (
        "territory: covers E54000027 (E54000027 lies within Y56 by the ruleset's areas, Y56 "
        "within GB-ENG by the ruleset's areas)"
    ) in render_text(decision)


def test_a_finer_ruleset_area_for_an_iso_code_adds_to_its_iso_parent() -> None:
    """`GB-KEN: Y59` (Y59 within GB-ENG): Kent is covered by Y59 agents and GB-ENG agents."""
    header = MINIMAL_HEADER + NHS_AREAS
    assert [_general("GB-KEN", t, header=header).agent_id for t in ("Y59", "GB-ENG", "Y56")] == [
        "t0",
        "t0",
        None,
    ]


def test_the_index_and_the_per_agent_check_agree_on_every_region() -> None:
    """`check_masks` (index, ORed area masks) and `check_agent` (per agent) give one answer."""
    ruleset = _ruleset(MINIMAL_HEADER + NHS_AREAS).compiled
    territories = ["GB", "GB-ENG", "GB-SCT", "GB-NIR", "GB-KEN", "Y56", "Y59", "E54000027", "US"]
    agents = [make_agent(f"t{n}", territories=frozenset({t})) for n, t in enumerate(territories)]
    roster = make_roster(*agents, make_agent("both", territories=frozenset({"GB-SCT", "Y56"})))
    index = index_for(roster)
    regions = ["GB-KEN", "GB-KEN-X", "GB-BFS", "GB-EDH", "E54000027", "Y59", "GB", "US-TX", "X"]
    disagreements = []
    for region in regions:
        case = make_case(intent=Intent.GENERAL, region=region, patient_location=None)
        need = build_need(case, Requirements(), ruleset, NOW)
        mask = check_masks(need, index)["territory"]
        for i, agent in enumerate(roster.agents):
            by_agent = not any(f.check == "territory" for f in check_agent(need, agent))
            if bool(mask >> i & 1) != by_agent:
                disagreements.append((region, agent.agent_id))
    assert disagreements == []


def test_a_regions_areas_are_worked_out_once_per_ruleset_and_region() -> None:
    """Two decisions' needs share one areas object: no walk per agent or per decision."""
    ruleset = _ruleset(MINIMAL_HEADER + NHS_AREAS).compiled
    case = make_case(intent=Intent.GENERAL, region="E54000027", patient_location=None)
    first = build_need(case, Requirements(), ruleset, NOW).areas
    again = build_need(case, Requirements(), ruleset, NOW).areas
    assert (first is again, first is not None and "GB-ENG" in first.codes) == (True, True)


def test_the_index_alone_covers_by_iso_parents() -> None:
    """`territory_mask` without a ruleset's areas still ORs the ISO parent's agents."""
    roster = make_roster(
        make_agent("eng", territories=frozenset({"GB-ENG"})),
        make_agent("sct", territories=frozenset({"GB-SCT"})),
    )
    assert index_for(roster).territory_mask("GB-KEN") == 0b01


def test_a_preferred_territory_counts_the_areas_a_region_lies_within() -> None:
    """`prefer: [territory]` ranks the GB-ENG agent first for a Kent case."""
    rules = (
        "  - id: rest\n    when: true\n    then: {route: {queue: general, prefer: [territory]}}\n"
    )
    agents = (
        make_agent("a-scot", territories=frozenset({"GB-SCT"})),
        make_agent("b-eng", territories=frozenset({"GB-ENG"})),
    )
    case = make_case(intent=Intent.GENERAL, region="GB-KEN", patient_location=None)
    decision = decide(case, make_roster(*agents), _ruleset(ADAPTIVE_HEADER, rules), NOW)
    assert decision.agent_id == "b-eng"


def test_rules_check_against_a_roster_counts_the_areas_a_pinned_region_lies_within() -> None:
    """A rule pinning GB-KEN or E54000027 is satisfiable by a GB-ENG agent: no finding."""
    rules = (
        "  - id: kent\n    when: \"case.region in ['GB-KEN', 'E54000027']\"\n"
        "    then: {route: {queue: general}}\n" + GENERAL
    )
    ruleset = _ruleset(MINIMAL_HEADER + NHS_AREAS, rules).compiled
    roster = make_roster(make_agent("eng", territories=frozenset({"GB-ENG"})))
    findings = unsatisfiable_requirements(ruleset, roster, "roster.json", NOW.date())
    assert [p.code for p in findings if p.code.startswith("roster.")] == []


def test_a_flagged_case_in_a_covered_council_still_escalates() -> None:
    """Safeguarding is untouched: a Kent case flagged so escalates, never assigned."""
    agent = make_agent("eng", territories=frozenset({"GB-ENG"}))
    case = make_case(intent=Intent.GENERAL, region="GB-KEN", flags=frozenset({"safeguarding"}))
    decision = decide(case, make_roster(agent), _ruleset(), NOW)
    assert (decision.outcome, decision.agent_id) == (Outcome.ESCALATE, None)


def test_an_unlicensed_agent_covering_the_councils_nation_is_not_assigned() -> None:
    """Coverage never stands in for a licence: a clinical Kent case needs an RN valid there."""
    unlicensed = make_agent("eng", territories=frozenset({"GB-ENG"}), licences=())
    texan = make_agent("tx", territories=frozenset({"GB-ENG"}))  # RN US-TX: not valid in GB
    uk = make_agent("uk", territories=frozenset({"GB-ENG"}), licences=(Licence("RN", "GB", LATER),))
    case = make_case(region="GB-KEN", patient_location="GB-KEN")
    decision = decide(case, make_roster(unlicensed, texan, uk), _ruleset(), NOW)
    assert (decision.outcome, decision.agent_id) == (Outcome.ASSIGN, "uk")


def test_a_ruleset_with_areas_compiles_only_when_every_area_is_sound() -> None:
    """A contradiction with ISO 3166 is a load error, so such a ruleset never decides."""
    with pytest.raises(RulesetError) as raised:
        compile_text(ruleset_with_rules(GENERAL, MINIMAL_HEADER + "areas:\n  GB-KEN: GB-SCT\n"))
    expected = ["areas.contradicts_iso"]
    assert expected == [p.code for p in raised.value.problems if p.severity is Severity.ERROR]
