"""Masking an object whole (`case.attributes`) hides each of its values wherever one is shown."""

from dataclasses import replace
from pathlib import Path

import pytest

from caseroute.audit.masking import Masker
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.service import DecideCommand, RoutingCore, RulesetRegistry
from caseroute.testing import (
    MINIMAL_HEADER,
    NOW,
    audit_config,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

RULES = ruleset_with_rules(
    """\
  - id: by-age
    when: "case.attributes.age == 47 or case.attributes.consent == true"
    then: {route: {queue: by_intent}}
  - id: rest
    when: true
    then: {route: {queue: by_intent}}
""",
    MINIMAL_HEADER + "attributes: {age: number, consent: boolean}\n",
)


@pytest.mark.parametrize("masked", [("case.attributes",), ("case.attributes.*",)])
def test_short_values_of_a_masked_object_are_digests_in_clause_values(
    masked: tuple[str, ...], tmp_path: Path
) -> None:
    """Review S42a: with `case.attributes` masked whole, `case.attributes.age = 47` came back.

    Values shorter than four characters are replaced in free text only in their exact form
    (`path = value`), which was built for the masked path alone, not for each key below it.
    """
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(compile_text(RULES), EngineKind.PYTHON))
    config = replace(audit_config(tmp_path), masked_fields=masked)
    core = RoutingCore(registry, config.open_store(), config.masker(), lambda: NOW)
    consent = True
    case = make_case(attributes={"age": 47, "consent": consent})
    command = DecideCommand("r1", "", "", (case,), make_roster(make_agent("a1")), NOW)
    decision = core.decide(command).decisions[0]
    core.audit.close()
    masker = Masker(config.masker().key)
    assert [c.actual for c in decision.explanation.rules[1].clauses] == [
        f"case.attributes.age = {masker.digest(47)}",
        f"case.attributes.consent = {masker.digest(consent)}",
    ]
