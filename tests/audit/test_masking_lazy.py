"""mask_decision compiles its scrubbing pattern only from spellings that occur in the explanation.

A case with masked values whose explanation quotes none of them (rules rarely read masked
fields) is masked without a regular expression; one that quotes some is scrubbed with only
those spellings. Either way the masked decision is byte for byte what 1665a64 gave (the
digests below were written by it): every kind of scrubbed text is covered.
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta

import pytest

from caseroute.audit.masking import DEFAULT_MASKED_PATHS, Masker, mask_decision
from caseroute.domain.case import Case, ContinuityReason, PreferredAgent
from caseroute.domain.decision_codec import decision_to_dict
from caseroute.domain.fingerprint import canonical_json, case_to_dict
from caseroute.domain.roster import Licence, Roster
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.testing import (
    MINIMAL_HEADER,
    NOW,
    clock,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    reference_ruleset,
    ruleset_with_rules,
)

KEY = b"lazy-scrub-key"
WIDE = (
    *DEFAULT_MASKED_PATHS,
    "case.patient_location",
    "case.preferred_language",
    "case.region",
)
ATTRIBUTE_RULES = ruleset_with_rules(
    """\
  - id: notes-fall
    when: "case.attributes.notes == 'fall' or case.attributes.patient_name == 'Ada'"
    then: {route: {queue: by_intent}}
  - id: rest
    when: true
    then: {route: {queue: by_intent}}
""",
    MINIMAL_HEADER + "attributes: {notes: string, patient_name: string, nhs_number: number}\n",
)


def _roster() -> Roster:
    return make_roster(
        make_agent("a-near"),
        make_agent(
            "a-far",
            licences=(Licence("RN", "US-CA", date(2030, 1, 1)),),
            territories=frozenset({"US-CA"}),
        ),
        make_agent("a-es", languages=frozenset({"es"})),
    )


def _preferring(agent_id: str) -> tuple[PreferredAgent, ...]:
    return (PreferredAgent(agent_id, ContinuityReason.PREVIOUS_CONTACT, NOW - timedelta(days=3)),)


def _scenarios() -> dict[str, tuple[Case, str, tuple[str, ...], bool]]:
    """Name -> (case, ruleset: reference/attributes, masked paths, per-agent detail)."""
    phi = {"patient_name": "Ada", "notes": "fall at home", "nhs_number": 9434765919}
    return {
        "phi-quoted-nowhere": (
            make_case(case_id="L1", attributes={"patient_name": "Zed Q", "mrn": 12345}),
            "reference",
            DEFAULT_MASKED_PATHS,
            True,
        ),
        "location-in-requirements-and-failures": (
            make_case(case_id="L2", preferred_language="es"),
            "reference",
            WIDE,
            True,
        ),
        "continuity-detail-and-sla-name": (
            make_case(
                case_id="L3",
                preferred_agents=_preferring("a-far"),
                attributes={"patient_name": "first-response"},
                sla_clocks=(clock("first-response", 30),),
            ),
            "reference",
            WIDE,
            False,
        ),
        "short-language-token": (
            make_case(case_id="L4", preferred_language="en", attributes={"email": "en"}),
            "reference",
            WIDE,
            True,
        ),
        "clause-actuals-of-masked-attributes": (
            make_case(case_id="L5", attributes=phi),
            "attributes",
            DEFAULT_MASKED_PATHS,
            False,
        ),
        "data-problem-of-a-masked-attribute": (
            make_case(case_id="L6", attributes={**phi, "nhs_number": "Zebedee"}),
            "attributes",
            DEFAULT_MASKED_PATHS,
            False,
        ),
    }


def _masked_digest(name: str) -> str:
    case, which, paths, detail = _scenarios()[name]
    if which == "reference":
        loaded = reference_ruleset()
    else:
        loaded = prepare_ruleset(compile_text(ATTRIBUTE_RULES), EngineKind.PYTHON)
    decision = decide(case, _roster(), loaded, NOW, agent_detail=detail)
    masked = mask_decision(decision, case_to_dict(case), Masker(KEY, paths))
    # The stored form, and the rendered rule traces the reply carries (not stored).
    rendered = [[c.actual for c in t.clauses] for t in masked.explanation.rules]
    text = canonical_json([decision_to_dict(masked), rendered])
    return hashlib.sha256(text.encode()).hexdigest()


GOLDEN = {
    "clause-actuals-of-masked-attributes": (
        "4cfb0e8267cb2129f363b097834956797a3127e927a74f9f59d62c2efb60593d"
    ),
    "continuity-detail-and-sla-name": (
        "2cba2a0172ba5e5cb98c1881bcd9d420beee4238fca6f80b07e4fd2989c18127"
    ),
    "data-problem-of-a-masked-attribute": (
        "2da3f24ed5ebfd8bcc10a23d7a7a1413e62eb47dc99ebfa0d297e52a4fcc294d"
    ),
    "location-in-requirements-and-failures": (
        "d48cd4c80fae1321bf0ee7f1cd132f3f1898ba482ba44d5f2222221628f0fa3a"
    ),
    "phi-quoted-nowhere": ("65c858263c208f8e4f62f16d452198fa74b278cf21d580669e112460b6949c52"),
    "short-language-token": ("06ea3c55122fc049129ead4ddc95f7cffad7ae6943f33b1a28504de2f4cb0f0a"),
}


@pytest.mark.parametrize("name", sorted(_scenarios()))
def test_each_masked_decision_keeps_its_golden_bytes(name: str) -> None:
    """The masked decision's stored form, as 1665a64 masked it."""
    assert _masked_digest(name) == GOLDEN[name]


def test_a_case_without_masked_values_keeps_its_decision_object() -> None:
    """Nothing to mask: the decision itself comes back."""
    case = make_case(case_id="L7")
    decision = decide(case, _roster(), reference_ruleset(), NOW)
    assert mask_decision(decision, case_to_dict(case), Masker(KEY)) is decision
