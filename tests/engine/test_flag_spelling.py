"""A flag that looks like a hard-constraint flag without being it is never assigned (R31a F1).

Before, any valid token other than the flag itself was some other flag: ``safeguarding_``,
``safeguarding:child``, ``safegaurding`` or ``missing_consent`` were ASSIGNED to a nurse by the
reference ruleset. Now the decision is an EXCEPTION naming the flag and the one it resembles.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz

from caseroute.domain.codec import FLAG_RE, parse_case
from caseroute.domain.decision import Outcome
from caseroute.domain.errors import RulesetError
from caseroute.domain.flag_spelling import resembles
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.engine.decide import decide
from caseroute.engine.flag_spelling import flag_spelling_problems
from caseroute.testing import (
    CATCH_ALL_RULE,
    MINIMAL_HEADER,
    NOW,
    case_data,
    compile_text,
    make_agent,
    make_roster,
    reference_ruleset,
    ruleset_with_rules,
)

ROSTER = make_roster(make_agent("nurse-tx-02"))  # a Texas RN; no file (the wheel runs these)
NEAR_SAFEGUARDING = [
    "Safeguarding-",  # read as safeguarding_
    "safeguarding.",
    "safeguarding:",
    "safeguarding/",
    "safeguarding:child",
    "safeguarding_concern",
    "safe-guarding",
    "safeguarding1",
    "safeguard",
    "safegaurding",
    "safeguardingconcern",  # run together (R31d 1): a ratio of 0.77 let these through
    "possiblesafeguarding",
    "safeguarding2024concern",
    "x" * 50 + "safeguarding",
    # misspelt and qualified (review R32c F1): each part alone was caught, together not
    "safegaurding:child",
    "safegaurding_concern",
    "safeguard_concern",
    "child_safeguard",
    "safeguardng_child",
    "safegaurdingconcern",
    "childsafegaurding",
    # misspelt across the word breaks, with a qualifier (review R32d F4)
    "Safe-Gaurding-Child",
    "safe_guardng_concern",
    "child_safe_gaurding",
]
NEAR_CONSENT = [
    "consent_missing.",
    "Consent-Missing-",
    "missing_consent",
    "consent",
    "missingconsent",
    "missing_consnt",  # R32c F1: a reordering of consnt_missing, which was caught
    "consent_mising_form",
    "missingconsnt",
]


def _decided(flags: list[str], **fields: Any) -> Any:
    data = case_data(region="US-TX", intent="clinical", patient_location="US-TX", flags=flags)
    return decide(parse_case({**data, **fields}), ROSTER, reference_ruleset(), NOW)


def test_the_clinical_case_is_assigned_without_a_flag() -> None:
    """Control: the case every test below flags is assigned when it carries no flag."""
    decision = _decided([])
    assert (decision.outcome, decision.agent_id) == (Outcome.ASSIGN, "nurse-tx-02")


@pytest.mark.parametrize("flag", NEAR_SAFEGUARDING)
def test_a_near_spelling_of_the_safeguarding_flag_is_an_exception(flag: str) -> None:
    """Each near spelling goes to the exceptions queue naming itself and `safeguarding`."""
    decision = _decided([flag])
    assert (decision.outcome, decision.queue, decision.agent_id) == (
        Outcome.EXCEPTION,
        "exceptions",
        None,
    )
    assert decision.reason_codes == ("invalid_case_data", "ambiguous_flag")
    assert decision.rule_id == "data:invalid_case_data"
    (detail,) = decision.explanation.data_problems
    assert "looks like the ruleset's safeguarding flag 'safeguarding' but is not it" in detail


@pytest.mark.parametrize("flag", NEAR_CONSENT)
def test_a_near_spelling_of_the_consent_flag_is_an_exception(flag: str) -> None:
    """Each near spelling of consent_missing is never assigned either."""
    decision = _decided([flag])
    assert (decision.outcome, decision.agent_id) == (Outcome.EXCEPTION, None)
    (detail,) = decision.explanation.data_problems
    assert "looks like the ruleset's consent flag 'consent_missing'" in detail


def test_the_flag_itself_beside_a_near_spelling_keeps_its_meaning() -> None:
    """`safeguarding` with `safeguarding:child` escalates; consent with its look-alike queues.

    The hard constraint is unambiguous when the flag itself is there; safeguarding is enforced
    last on every path.
    """
    both = _decided(["safeguarding", "safeguarding:child"])
    assert (both.outcome, both.queue) == (Outcome.ESCALATE, "safeguarding")
    consent = _decided(["consent_missing", "missing_consent"])
    assert (consent.outcome, consent.agent_id) == (Outcome.QUEUE, None)


ORDINARY = [
    *("vip", "callback", "interpreter", "complaint", "missing_docs", "interpreter_needed"),
    *("callback_requested", "repeat_caller", "lifeguarding_course", "safeguards_ok"),
    *("safety_concern", "unsafe_housing", "guardianship", "contact_preference", "consult"),
    *("consultation", "constant_pain", "console", "concern", "missing_info"),
]
"""Flags that do not carry a hard flag's distinctive word or a 4-letter start of it."""


@pytest.mark.parametrize("flag", ORDINARY)
def test_other_flags_are_routed_as_before(flag: str) -> None:
    """Flags that are not near spellings of a hard-constraint flag change nothing."""
    decision = _decided([flag])
    assert (decision.outcome, decision.agent_id) == (Outcome.ASSIGN, "nurse-tx-02")


CARRYING_CONSENT = [
    # review M3: each was ASSIGNED, while the bare `consent` was already an EXCEPTION
    *("consent:no", "consent_false", "consent_withdrawn", "no_consent", "consent_none"),
    *("consent_no", "consent_absent", "consent_m"),
    # the same word with any other qualifier: a routing service cannot tell which mean "missing"
    *("consent_given", "consented", "consent_to_sms", "noconsent", "consent/declined"),
    *("informed_consent_refused", "patient.consent:pending", "consent_missing_not"),
    # misspelt, negated (the word is matched as hard words always were, one edit allowed)
    *("no_consnt", "consnet_withdrawn"),
]
TRUNCATED = [
    # review L3: a start of the distinctive word, four letters or more, as a word of the flag
    *("safeg", "safegu", "safeguardin", "safe", "safeg:child", "child_safeg", "safe_to_text"),
    *("cons", "conse", "consen", "conse:no", "no_consen"),
]


@pytest.mark.parametrize("flag", CARRYING_CONSENT)
def test_a_flag_carrying_the_word_consent_is_an_exception(flag: str) -> None:
    """A flag with the word `consent` and anything else is ambiguous: an EXCEPTION, not assigned.

    Review M3: `consent:no`, `no_consent`, `consent_withdrawn` and the like were routed as if
    unflagged (and ASSIGNED) while the bare `consent` was already an EXCEPTION.
    """
    decision = _decided([flag])
    assert (decision.outcome, decision.queue, decision.agent_id) == (
        Outcome.EXCEPTION,
        "exceptions",
        None,
    )
    assert decision.reason_codes == ("invalid_case_data", "ambiguous_flag")
    (detail,) = decision.explanation.data_problems
    assert detail.startswith(
        f"case.flags: {flag!r} looks like the ruleset's consent flag 'consent_missing' but is "
        "not it; send 'consent_missing' if that is meant"
    )


@pytest.mark.parametrize("flag", TRUNCATED)
def test_a_truncated_hard_word_is_an_exception(flag: str) -> None:
    """A word of the flag that is a 4-letter-or-longer start of a hard flag's word: EXCEPTION.

    Review L3: `safeg` and the like were routed as if unflagged.
    """
    decision = _decided([flag])
    assert (decision.outcome, decision.agent_id) == (Outcome.EXCEPTION, None)
    assert decision.reason_codes == ("invalid_case_data", "ambiguous_flag")
    (detail,) = decision.explanation.data_problems
    meaning, hard = ("consent", "consent_missing") if "con" in flag else ("safeguarding",) * 2
    assert f"looks like the ruleset's {meaning} flag {hard!r} but is not it" in detail


@pytest.mark.parametrize("flag", ["sg", "sfg", "saf", "con", "sg_concern", "cnst"])
def test_abbreviations_shorter_than_four_letters_are_a_documented_limit(flag: str) -> None:
    """`sg`, `saf`, `con` are too short to be told from other words: routed as other flags.

    docs/rulesets.md (Hard constraints) names this limit; a caller must send the flag itself.
    """
    decision = _decided([flag])
    assert (decision.outcome, decision.agent_id) == (Outcome.ASSIGN, "nurse-tx-02")


def test_the_exact_hard_flags_keep_their_meaning() -> None:
    """`consent_missing` queues for consent and `safeguarding` escalates, as before, alone or not.

    The look-alike beside the flag itself changes nothing: the hard constraint is unambiguous.
    """
    for flags in (["consent_missing"], ["consent_missing", "consent_withdrawn", "vip"]):
        consent = _decided(flags)
        assert (consent.outcome, consent.agent_id) == (Outcome.QUEUE, None)
        assert "consent_missing" in consent.reason_codes
        assert consent.explanation.data_problems == ()
    for flags in (["safeguarding"], ["safeguarding", "safeg", "consent_no"]):
        escalated = _decided(flags)
        assert (escalated.outcome, escalated.queue) == (Outcome.ESCALATE, "safeguarding")


@pytest.mark.parametrize("flag", ["consent_withdrawn", "no_consent", "cons", "consent:no"])
def test_a_ruleset_without_a_consent_constraint_never_assigns_a_flag_carrying_consent(
    flag: str,
) -> None:
    """Without `consent:` in the ruleset, a flag carrying `consent` is still an EXCEPTION."""
    loaded = prepare_ruleset(compile_text(ruleset_with_rules(CATCH_ALL_RULE)), EngineKind.PYTHON)
    data = case_data(intent="general", region="US-TX", flags=[flag])
    decision = decide(parse_case(data), ROSTER, loaded, NOW)
    assert (decision.outcome, decision.reason_codes) == (
        Outcome.EXCEPTION,
        ("invalid_case_data", "ambiguous_flag"),
    )
    (detail,) = decision.explanation.data_problems
    assert f"{flag!r} looks like caseroute's conventional consent flag 'consent_missing'" in detail


def test_a_ruleset_with_its_own_safeguarding_flag_treats_a_truncation_as_ambiguous() -> None:
    """With the safeguarding flag named `sg_concern`, `safeg` still is never routed as unflagged."""
    header = MINIMAL_HEADER.replace("{flag: safeguarding,", "{flag: sg_concern,")
    rules = ruleset_with_rules(CATCH_ALL_RULE, header).replace(
        "'safeguarding' in case.flags", "'sg_concern' in case.flags"
    )
    loaded = prepare_ruleset(compile_text(rules), EngineKind.PYTHON)
    decision = decide(parse_case(case_data(intent="general", flags=["safeg"])), ROSTER, loaded, NOW)
    assert (decision.outcome, decision.reason_codes) == (
        Outcome.EXCEPTION,
        ("invalid_case_data", "ambiguous_flag"),
    )
    (detail,) = decision.explanation.data_problems
    assert "'safeg' looks like caseroute's conventional safeguarding flag" in detail


def test_a_ruleset_with_its_own_safeguarding_flag_treats_the_conventional_one_as_ambiguous() -> (
    None
):
    """R31a: a ruleset naming `sg_concern` routed a case flagged `safeguarding` normally."""
    header = MINIMAL_HEADER.replace("{flag: safeguarding,", "{flag: sg_concern,")
    rules = ruleset_with_rules(CATCH_ALL_RULE, header).replace(
        "'safeguarding' in case.flags", "'sg_concern' in case.flags"
    )
    loaded = prepare_ruleset(compile_text(rules), EngineKind.PYTHON)
    data = case_data(intent="general", flags=["safeguarding"])
    decision = decide(parse_case(data), ROSTER, loaded, NOW)
    assert (decision.outcome, decision.reason_codes) == (
        Outcome.EXCEPTION,
        ("invalid_case_data", "ambiguous_flag"),
    )
    (detail,) = decision.explanation.data_problems
    assert detail == (
        "case.flags: 'safeguarding' is caseroute's conventional safeguarding flag "
        "'safeguarding', but this ruleset's safeguarding flag is 'sg_concern'; send "
        "'sg_concern' for that"
    )
    own = decide(parse_case({**data, "flags": ["sg_concern"]}), ROSTER, loaded, NOW)
    assert (own.outcome, own.queue) == (Outcome.ESCALATE, "safeguarding")


@pytest.mark.parametrize(
    ("flag", "hard", "expected"),
    [
        ("safeguarding", "safeguarding", False),  # the flag itself
        ("safe_guarding", "safeguarding", True),  # the same letters
        ("child_safeguarding", "safeguarding", True),  # its words include the hard flag's
        ("consent", "consent_missing", True),  # its words are among the hard flag's
        ("safegaurding", "safeguarding", True),  # a transposition
        ("saf", "safeguarding", False),  # too little alike
        ("safe", "safeguarding", True),  # a start of the hard word, 4 letters or more (L3)
        ("safeg_child", "safeguarding", True),  # as a word of the flag
        ("safegchild", "safeguarding", False),  # run together: a word of its own (a limit)
        ("sg", "safeguarding", False),  # an abbreviation (a documented limit)
        ("safety", "safeguarding", False),  # starts like it, but is not a start of it
        ("no_consent", "consent_missing", True),  # the distinctive word, negated (M3)
        ("consent_withdrawn", "consent_missing", True),
        ("consent_m", "consent_missing", True),
        ("missing_docs", "consent_missing", False),  # `missing` is not distinctive
        ("conse", "consent_missing", True),
        ("conse", "no_consent", True),  # whatever the ruleset calls its consent flag
        ("consent_given", "no_consent", True),
        ("consent_given", "sg_concern", False),  # no distinctive word: all its words needed
        ("safety_concern", "sg_concern", False),
        ("missing_content", "consent_missing", True),  # one letter from consent: fail-closed
        (":", "safeguarding", False),  # no letters at all
    ],
)
def test_resembles_by_each_rule(flag: str, hard: str, *, expected: bool) -> None:
    """Each rule of `resembles` on its own, and what is not a spelling."""
    assert resembles(flag, hard) is expected


def test_problems_are_listed_in_flag_order_one_per_flag() -> None:
    """Two look-alikes give two details, sorted by flag, each naming the flag it resembles."""
    problems = flag_spelling_problems(
        ["safeguarding_", "vip", "consent_missing."], reference_ruleset().compiled.constraints
    )
    assert [p.split(" looks like ")[0] for p in problems] == [
        "case.flags: 'consent_missing.'",
        "case.flags: 'safeguarding_'",
    ]
    assert problems[1].endswith(
        "send 'safeguarding' if that is meant (a hard-constraint flag must be spelt as the "
        "ruleset names it; case, spaces and - aside), or another flag"
    )


@pytest.mark.parametrize("flag", ["consent_missing", "Consent-Missing", "missing_consent"])
def test_a_ruleset_without_a_consent_constraint_never_assigns_a_consent_flagged_case(
    flag: str,
) -> None:
    """R31a F2: with `consent:` dropped from a ruleset, consent_missing cases were ASSIGNED.

    The README promises a case flagged consent_missing is assigned to nobody; every ruleset
    keeps that now (and `rules check` warns about the missing constraint).
    """
    loaded = prepare_ruleset(compile_text(ruleset_with_rules(CATCH_ALL_RULE)), EngineKind.PYTHON)
    assert loaded.compiled.constraints.consent_flag is None
    data = case_data(intent="general", region="US-TX", flags=[flag])
    decision = decide(parse_case(data), ROSTER, loaded, NOW)
    assert (decision.outcome, decision.agent_id) == (Outcome.EXCEPTION, None)
    assert decision.reason_codes == ("invalid_case_data", "ambiguous_flag")
    (detail,) = decision.explanation.data_problems
    assert (
        "caseroute's conventional consent flag 'consent_missing', but this ruleset enforces no "
        "consent constraint, so the case is not assigned; add `consent: {flag: consent_missing}` "
        "to the ruleset's constraints, or do not send the flag" in detail
    )
    unflagged = decide(parse_case({**data, "flags": []}), ROSTER, loaded, NOW)
    assert (unflagged.outcome, unflagged.agent_id) == (Outcome.ASSIGN, "nurse-tx-02")


@pytest.mark.parametrize(
    ("safeguarding", "consent"),
    [
        ("safeguarding", "safeguarding"),  # one flag, two meanings
        ("consent_missing", "safeguarding"),  # swapped
        ("sg_concern", "safeguarding"),  # consent named with the conventional safeguarding flag
        ("sg_concern", "safegaurding"),  # or a near spelling of it
        ("consent_mising", "consent_flag"),  # safeguarding named like consent_missing
    ],
)
def test_a_hard_flag_named_like_one_of_another_meaning_is_refused(
    safeguarding: str, consent: str
) -> None:
    """A hard flag named like one of another meaning: the ruleset does not compile.

    Review R32a F5: a consent flag named `safeguarding` loaded, and safeguarding cases were
    queued as consent missing, never escalated.
    """
    header = MINIMAL_HEADER.replace("{flag: safeguarding,", f"{{flag: {safeguarding},").replace(
        "  licence:", f"  consent: {{flag: {consent}}}\n  licence:", 1
    )
    rules = ruleset_with_rules(CATCH_ALL_RULE, header).replace(
        "'safeguarding' in case.flags", f"'{safeguarding}' in case.flags"
    )
    with pytest.raises(RulesetError) as caught:
        compile_text(rules)
    clashes = [p for p in caught.value.problems if p.code == "constraints.flag_clash"]
    assert clashes, [str(p) for p in caught.value.problems]
    assert all(p.line in (6, 7) for p in clashes)


def test_a_flag_costs_a_bounded_number_of_similarity_searches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At most one search per hard word plus one whole comparison, whatever the flag's shape.

    Review R32d F1: difflib over every word and each word's ends ran up to 7 comparisons per
    word, ~13 words per 200-character flag: anagram pieces of a hard word cost ~650 ms for 200
    flags. The searches are rapidfuzz's (linear in the flag, in C++); this pins their number.
    """
    from caseroute.domain import flag_spelling

    calls: list[str] = []

    class Counting:
        @staticmethod
        def ratio(*args: Any, **kwargs: Any) -> float:
            calls.append("ratio")
            return float(flag_spelling_fuzz.ratio(*args, **kwargs))

        @staticmethod
        def partial_ratio(*args: Any, **kwargs: Any) -> float:
            calls.append("partial_ratio")
            return float(flag_spelling_fuzz.partial_ratio(*args, **kwargs))

    flag_spelling_fuzz = fuzz
    monkeypatch.setattr(flag_spelling, "fuzz", Counting)
    pieces = ["gusadfreinagd", "adsnigrugafed", "idarsfnuggeda"] * 5
    hostile = [
        "_".join(pieces)[:200],
        "_".join(["missing"[::-1] + "xy"] * 20)[:200],
        "consent_" + "_".join(["gnissim"] * 24)[:190],
    ]
    for flag in hostile:
        for hard in ("safeguarding", "consent_missing"):
            resembles.cache_clear()
            calls.clear()
            resembles(flag, hard)
            assert len(calls) <= len(hard.split("_")) + 1, (flag, hard, calls)


_AROUND = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.:/", max_size=12)
HARD_WORDS = {
    "safeguarding": "safeguarding",
    "consent_missing": "consent",
    "no_consent": "consent",
    "patient.consent:required": "consent",
}
"""Hard flags, each with its distinctive word (a one-word flag is its own)."""
HARD_FLAGS = sorted(HARD_WORDS)


@settings(max_examples=300, deadline=None)
@given(hard=st.sampled_from(HARD_FLAGS), before=_AROUND, after=_AROUND)
def test_any_flag_carrying_the_distinctive_word_resembles_the_hard_flag(
    hard: str, before: str, after: str
) -> None:
    """Whatever stands around a hard flag's distinctive word, the flag is ambiguous (review M3)."""
    flag = before + HARD_WORDS[hard] + after
    if flag != hard and FLAG_RE.fullmatch(flag):
        assert resembles(flag, hard), flag


@settings(max_examples=300, deadline=None)
@given(
    hard=st.sampled_from(HARD_FLAGS),
    length=st.integers(min_value=4, max_value=11),
    others=st.lists(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True), max_size=3),
    separator=st.sampled_from("_.:/"),
    at=st.integers(min_value=0, max_value=3),
)
def test_any_flag_with_a_word_cutting_the_distinctive_word_short_resembles_it(
    hard: str, length: int, others: list[str], separator: str, at: int
) -> None:
    """A word that is the distinctive word's first 4 letters or more, among any others (L3)."""
    word = HARD_WORDS[hard]
    words = [*others]
    words.insert(min(at, len(words)), word[: min(length, len(word) - 1)])
    assert resembles(separator.join(words), hard)


def test_the_distinctive_word_of_each_hard_flag() -> None:
    """One word flags are their own; of several, `consent` or `safeguarding`, else none."""
    from caseroute.domain.flag_spelling import MIN_START, distinctive_words

    assert MIN_START == 4
    assert {hard: {word} for hard, word in HARD_WORDS.items()} == {
        hard: distinctive_words(hard) for hard in HARD_WORDS
    }
    found = [
        distinctive_words(hard)
        for hard in ("safeguarding", "sgconcern", "consent_missing", "no_consent", "sg_concern")
    ]
    assert [
        {"safeguarding"},
        {"sgconcern"},
        {"consent"},
        {"consent"},
        set(),
    ] == found
