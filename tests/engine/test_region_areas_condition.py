"""Rules can test where a region lies: ``'GB-SCT' in case.region_areas``.

Territory coverage follows ISO 3166-2 parents and the ruleset's ``areas:``, but a rule's
condition compared ``case.region`` exactly: ``case.region == 'GB-SCT'`` never held for a case in
Edinburgh (``GB-EDH``), so a rule sending Scottish cases to a Scottish queue had to list every
council area (and every ICB for an NHS England region). ``case.region_areas`` is the region and
every area it lies within; a masked region masks it too.
"""

from __future__ import annotations

import pytest

from caseroute.audit.masking import Masker, mask_decision, masked_reads
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

RULES = """\
  - id: scotland
    when: "'GB-SCT' in case.region_areas"
    then: {route: {queue: scotland, territory: false}}
  - id: london-region
    when: "'Y56' in case.region_areas"
    then: {route: {queue: london, territory: false}}
  - id: rest
    when: true
    then: {route: {queue: by_intent, territory: false}}
"""
TEXT = ruleset_with_rules(RULES, MINIMAL_HEADER + "areas:\n  E54000027: Y56\n  Y56: GB-ENG\n")
KEY = b"region-areas-condition"


def _decide(region: str | None, kind: EngineKind = EngineKind.PYTHON) -> Decision:
    ruleset = prepare_ruleset(compile_text(TEXT), kind)
    case = make_case(region=region)
    return decide(case, make_roster(make_agent("a-1")), ruleset, NOW)


@pytest.mark.parametrize("kind", list(EngineKind))
@pytest.mark.parametrize(
    ("region", "rule"),
    [
        ("GB-EDH", "scotland"),  # Edinburgh: ISO 3166-2 parent GB-SCT
        ("GB-SCT", "scotland"),  # the area itself
        ("E54000027", "london-region"),  # an ICB, within Y56 by the ruleset's areas
        ("GB-KEN", "rest"),  # Kent: in England, not Scotland nor Y56
        (None, "rest"),  # no region: the field is missing, the test is false
    ],
)
def test_a_rule_tests_the_areas_a_region_lies_within(
    kind: EngineKind, region: str | None, rule: str
) -> None:
    """Both engines decide by the region's areas, and a missing region holds none."""
    assert _decide(region, kind).explanation.deciding_rule_id == rule


def test_the_clause_shows_the_areas_it_read() -> None:
    """The explanation quotes the list the rule read, for an auditor to see why it held."""
    decision = _decide("GB-EDH")
    scotland = next(t for t in decision.explanation.rules if t.rule_id == "scotland")
    assert [c.actual for c in scotland.clauses] == [
        'case.region_areas = ["GB", "GB-EDH", "GB-SCT"]'
    ]


def test_a_masked_region_masks_its_areas_in_the_explanation() -> None:
    """With case.region masked, no area of it is left in clear in clauses or results."""
    decision = _decide("GB-EDH")
    case = case_to_dict(make_case(region="GB-EDH"))
    masker = Masker(KEY, ("case.region",))
    masked = mask_decision(decision, case, masker)
    scotland = next(t for t in masked.explanation.rules if t.rule_id == "scotland")
    (actual,) = [c.actual for c in scotland.clauses]
    assert actual.startswith("case.region_areas = hmac-sha256:")
    results = masked.explanation.rule_results
    assert results is not None
    stored = [v for _, v in results.actuals]
    assert actual in stored
    for text in (actual, *stored):
        assert "GB-SCT" not in text
        assert "GB-EDH" not in text


def test_a_rule_reading_region_areas_is_warned_about_when_the_region_is_masked() -> None:
    """`rules check` with the audit's masking names the rule: replay cannot reproduce it."""
    compiled = compile_text(TEXT)
    warned = masked_reads(compiled, Masker(KEY, ("case.region",)))
    assert {(p.code, p.rule_id) for p in warned} >= {
        ("audit.masked_field", "scotland"),
        ("audit.masked_field", "london-region"),
    }
    assert masked_reads(compiled, Masker(KEY, ("case.attributes.notes",))) == []
