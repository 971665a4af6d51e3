"""A masked patient location is not told by the licence check's advice beside its digest.

With ``case.patient_location`` masked, a case sent with ``PR`` (a place licences name
``US-PR``), ``UK`` (``GB``) or ``US`` (a whole country: "e.g. US-TX") was stored and answered
with the value's digest, and advice deriving the value one-to-one in clear (review S43a).
"""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from caseroute.audit.masking import Masker
from caseroute.domain.case import Intent
from caseroute.domain.decision_codec import decision_to_dict
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.service import DecideCommand, RoutingCore, RulesetRegistry
from caseroute.testing import (
    CATCH_ALL_RULE,
    NOW,
    audit_config,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)


@pytest.mark.parametrize(
    ("location", "derived"), [("PR", "US-PR"), ("UK", "GB"), ("US", "US-TX"), ("CA", "CA-ON")]
)
def test_the_advice_names_no_place_derived_from_a_masked_location(
    location: str, derived: str, tmp_path: Path
) -> None:
    """The reply and the stored record show the value's digest where the advice named a place."""
    registry = RulesetRegistry()
    registry.add(
        prepare_ruleset(compile_text(ruleset_with_rules(CATCH_ALL_RULE)), EngineKind.PYTHON)
    )
    config = replace(audit_config(tmp_path), masked_fields=("defaults", "case.patient_location"))
    core = RoutingCore(registry, config.open_store(), config.masker(), lambda: NOW)
    # A licence is needed (clinical); no region, which would name a place of its own.
    case = make_case(intent=Intent.CLINICAL, patient_location=location, region=None)
    roster = make_roster(
        make_agent("a1", licences=(), territories=())
    )  # the roster blob names no place
    command = DecideCommand("r1", "", "", (case,), roster, NOW)
    decision = core.decide(command).decisions[0]
    core.audit.close()
    registry.close()
    (problem,) = decision.explanation.data_problems
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    digest = Masker(config.masker().key).digest(location)
    assert (
        f"case.patient_location is {digest}" in problem,
        derived in problem,
        derived in json.dumps(decision_to_dict(decision)),
        derived.encode() in stored,
    ) == (True, False, False, False), problem


def test_a_masked_location_that_is_its_own_licensing_code_is_masked_once(tmp_path: Path) -> None:
    """`US-TX` is its own licensing code: the derived text is the value, digested once."""
    registry = RulesetRegistry()
    registry.add(
        prepare_ruleset(compile_text(ruleset_with_rules(CATCH_ALL_RULE)), EngineKind.PYTHON)
    )
    config = replace(audit_config(tmp_path), masked_fields=("defaults", "case.patient_location"))
    core = RoutingCore(registry, config.open_store(), config.masker(), lambda: NOW)
    case = make_case(intent=Intent.CLINICAL, patient_location="US-TX", region=None)
    roster = make_roster(make_agent("a1", licences=(), territories=()))
    decision = core.decide(DecideCommand("r1", "", "", (case,), roster, NOW)).decisions[0]
    core.audit.close()
    registry.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    shown = json.dumps(decision_to_dict(decision))
    digest = Masker(config.masker().key).digest("US-TX")
    assert ("US-TX" in shown, b"US-TX" in stored, digest.encode() in stored) == (False, False, True)
