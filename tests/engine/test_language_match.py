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

from caseroute.engine.matching import build_need, check_agent, match_agents
from caseroute.engine.roster_index import language_key
from caseroute.rules.model import Requirements
from caseroute.testing import NOW, make_agent, make_case, make_roster, reference_compiled

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
