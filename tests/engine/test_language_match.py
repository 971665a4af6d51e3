"""Language matching: the primary subtag, except where BCP 47 tags tell spoken languages apart.

Tags were compared by their primary subtag alone, so a patient asking for ``zh-HK`` (Hong
Kong: Cantonese) was matched with a Mandarin speaker listed as ``zh-CN``, while an agent
listing ``yue`` (Cantonese's own tag) was not matched at all; ``sgn-ase`` (American Sign
Language) matched ``sgn-bfi`` (British). The rule now (docs/rulesets.md, "Actions"): an
extended language subtag is the language (``zh-yue`` is ``yue``), ``cmn`` is ``zh``, and a
Chinese tag for Hong Kong or Macau is Cantonese.
"""

from __future__ import annotations

import pytest

from caseroute.domain.case import Intent
from caseroute.domain.decision import Outcome
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.engine.matching import build_need, check_agent, match_agents
from caseroute.engine.roster_index import language_key
from caseroute.rules.model import Requirements
from caseroute.testing import (
    CATCH_ALL_RULE,
    MINIMAL_HEADER,
    NOW,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    reference_compiled,
    ruleset_with_rules,
)

RULESET = reference_compiled()


def _speaks(wanted: str, spoken: str) -> tuple[bool, bool]:
    """Whether an agent speaking ``spoken`` meets ``wanted``: per agent, and by the index."""
    need = build_need(make_case(preferred_language=wanted), Requirements(), RULESET, NOW)
    agent = make_agent(languages=frozenset({spoken}))
    one = "language" not in [f.check for f in check_agent(need, agent)]
    indexed = bool(match_agents(need, make_roster(agent), detail=False).eligible)
    return one, indexed


@pytest.mark.parametrize(
    ("wanted", "spoken"),
    [
        ("zh-hk", "zh-cn"),  # Cantonese asked, Mandarin spoken
        ("zh-hant-hk", "zh-tw"),
        ("zh-mo", "zh"),
        ("yue", "cmn"),
        ("zh-cn", "zh-hk"),  # and the other way
        ("sgn-ase", "sgn-bfi"),  # American and British Sign Language
    ],
)
def test_different_spoken_languages_do_not_match(wanted: str, spoken: str) -> None:
    """Same primary subtag, different language: the language check fails, on both paths."""
    assert _speaks(wanted, spoken) == (False, False)


@pytest.mark.parametrize(
    ("wanted", "spoken"),
    [
        ("zh-hk", "yue"),  # Cantonese's own tag
        ("zh-hk", "zh-yue"),
        ("yue-hk", "zh-hant-hk"),
        ("zh-cn", "zh-tw"),  # Mandarin, whatever the script
        ("zh", "cmn"),
        ("zh-hant", "zh-hans-sg"),
        ("en-gb", "en-us"),  # elsewhere the primary subtag, as before
        ("es-419", "es"),
        ("pt-br", "pt-pt"),
    ],
)
def test_the_same_spoken_language_matches(wanted: str, spoken: str) -> None:
    """Region and script do not matter where they do not change the language."""
    assert _speaks(wanted, spoken) == (True, True)


def test_the_key_is_what_matching_compares() -> None:
    """One function for matching, the index and ``rules check --roster``."""
    assert [language_key(t) for t in ("zh-HK", "zh-yue-HK", "cmn-Hans", "en-GB", "zh-x-hk")] == [
        "yue",
        "yue",
        "zh",
        "en",
        "zh",
    ]


@pytest.mark.parametrize(
    ("wanted", "spoken"),
    [
        ("en-gbr", "en"),  # no extlang of en (a region is 2 letters or 3 digits): en
        ("en", "en-gbr"),  # an agent's tag reads the same way
        ("zh-gbr", "zh-cn"),  # zh has extlangs, but gbr is none of them: Mandarin
        ("ar-arz", "arz"),  # a registered extlang still is the language
    ],
)
def test_a_three_letter_subtag_is_an_extlang_only_after_its_registered_prefix(
    wanted: str, spoken: str
) -> None:
    """`en-gbr` is English, not a language `gbr`: only registered extlangs name a language."""
    assert _speaks(wanted, spoken) == (True, True)


def test_an_unregistered_extlang_is_not_another_language() -> None:
    """`en-gbr` does not meet a `gbr` speaker, nor `ar-arz` (Egyptian) an `ar-apc` speaker."""
    assert [_speaks("en-gbr", "gbr"), _speaks("ar-arz", "ar-apc")] == [(False, False)] * 2


@pytest.mark.parametrize("kind", list(EngineKind))
def test_a_case_asking_for_en_gbr_is_assigned_an_english_speaker(kind: EngineKind) -> None:
    """Both evaluators route an `en-gbr` case to the English speaker, not to nobody."""
    rules = (
        "  - id: general\n"
        "    when: case.intent == 'general'\n"
        "    then: {route: {queue: general, reason: general}}\n" + CATCH_ALL_RULE
    )
    loaded = prepare_ruleset(compile_text(ruleset_with_rules(rules, MINIMAL_HEADER)), kind)
    case = make_case(intent=Intent.GENERAL, preferred_language="en-gbr")
    roster = make_roster(
        make_agent("a-french", languages=frozenset({"fr"})),
        make_agent("b-english", languages=frozenset({"en-gb"})),
    )
    decision = decide(case, roster, loaded, NOW)
    assert (decision.outcome, decision.agent_id) == (Outcome.ASSIGN, "b-english")
