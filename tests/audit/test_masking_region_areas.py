"""A masked region's areas never reach the log: the territory requirement keeps its digest only.

The matching trace says why a region is covered (``territory: covers GB-KEN (GB-KEN lies within
GB-ENG by ISO 3166-2)``). With ``case.region`` masked, the region became a digest but the
areas it lies within stayed in clear, telling what the digest hides (its nation, its NHS
region).
"""

from __future__ import annotations

import pytest

from caseroute.audit.masking import Masker, mask_decision
from caseroute.domain.decision import Decision
from caseroute.domain.fingerprint import case_to_dict
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.testing import (
    MINIMAL_HEADER,
    NOW,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

KEY = b"region-areas-key"
RULES = """\
  - id: rest
    when: true
    then: {route: {queue: by_intent}}
"""
AREAS = "areas:\n  E54000027: Y56\n  Y56: GB-ENG\n"


def _masked(region: str, territory: str, masked: tuple[str, ...]) -> tuple[Decision, Masker]:
    ruleset = prepare_ruleset(
        compile_text(ruleset_with_rules(RULES, MINIMAL_HEADER + AREAS)), EngineKind.PYTHON
    )
    case = make_case(region=region)
    roster = make_roster(make_agent("a-1", territories=(territory,)))
    decision = decide(case, roster, ruleset, NOW)
    masker = Masker(KEY, masked)
    return mask_decision(decision, case_to_dict(case), masker), masker


def _territory(decision: Decision) -> str:
    matching = decision.explanation.matching
    assert matching is not None
    return next(r for r in matching.requirements if r.startswith("territory"))


@pytest.mark.parametrize(
    ("region", "territory", "areas"),
    [("GB-KEN", "GB-ENG", ("GB-ENG",)), ("E54000027", "GB-ENG", ("Y56", "GB-ENG"))],
)
def test_a_masked_region_s_areas_are_not_in_the_trace(
    region: str, territory: str, areas: tuple[str, ...]
) -> None:
    """Only the region's digest is shown: no area it lies within, no `lies within` step."""
    decision, masker = _masked(region, territory, ("case.region",))
    assert decision.agent_id == "a-1"
    text = _territory(decision)
    assert text == f"territory: covers {masker.digest(region)}"
    assert not any(area in text for area in areas)


def test_an_unmasked_region_s_areas_stay_in_the_trace() -> None:
    """Masking other fields leaves the explanation of why the region is covered."""
    decision, _ = _masked("GB-KEN", "GB-ENG", ("case.attributes.notes",))
    assert (
        _territory(decision) == "territory: covers GB-KEN (GB-KEN lies within GB-ENG by ISO 3166-2)"
    )
