"""case_forms writes a case's canonical text directly: the same characters canonical_json writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caseroute.domain.case import (
    Case,
    Channel,
    ContinuityReason,
    Intent,
    PreferredAgent,
    RequiredSkill,
    SentimentReading,
    SlaClock,
    Tier,
    Urgency,
)
from caseroute.domain.fingerprint import (
    canonical_json,
    case_forms,
    case_to_dict,
    format_timestamp,
    string_json,
)
from caseroute.testing import NOW, make_case

# Any character JSON must escape or may carry: quotes, backslashes, controls, non-ASCII, lone
# surrogates (the encoder writes them as it finds them).
texts = st.text(st.characters(codec=None, exclude_categories=()), max_size=12)
instants = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis bounds are naive; zones below
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
)
numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**30), 10**30)
attribute_values = st.booleans() | numbers | texts
optional_text = st.none() | texts


# Built once: building these on every draw spent most of the test's time in Hypothesis's own
# strategy caching and validation.
CHANNELS = st.sampled_from(list(Channel))
INTENTS = st.sampled_from(list(Intent))
URGENCIES = st.sampled_from(list(Urgency))
TIERS = st.sampled_from(list(Tier))
REQUIRED_SKILL_LISTS = st.lists(
    st.builds(RequiredSkill, texts, st.integers(-5, 10**20)), max_size=3
)
SENTIMENT_LISTS = st.lists(st.builds(SentimentReading, numbers, instants), max_size=3)
CLOCK_LISTS = st.lists(st.builds(SlaClock, texts, instants, instants), max_size=3)
FLAG_LISTS = st.lists(texts, max_size=4)
ATTRIBUTE_MAPS = st.dictionaries(texts, attribute_values, max_size=4)
OPTIONAL_INSTANTS = st.none() | instants
DECLINED_LISTS = st.lists(texts, max_size=3)
PREFERRED_LISTS = st.lists(
    st.builds(PreferredAgent, texts, st.sampled_from(list(ContinuityReason)), st.none() | instants),
    max_size=3,
)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Cases with any text, number and instant in every field the canonical form writes."""
    return Case(
        case_id=draw(texts),
        created_at=draw(instants),
        channel=draw(CHANNELS),
        intent=draw(INTENTS),
        urgency=draw(URGENCIES),
        classification_confidence=draw(numbers),
        patient_location=draw(optional_text),
        region=draw(optional_text),
        tier=draw(TIERS),
        required_skills=tuple(draw(REQUIRED_SKILL_LISTS)),
        preferred_language=draw(optional_text),
        sentiment=tuple(draw(SENTIMENT_LISTS)),
        sla_clocks=tuple(draw(CLOCK_LISTS)),
        flags=frozenset(draw(FLAG_LISTS)),
        attributes=draw(ATTRIBUTE_MAPS),
        waiting_since=draw(OPTIONAL_INSTANTS),
        declined_agents=frozenset(draw(DECLINED_LISTS)),
        preferred_agents=tuple(draw(PREFERRED_LISTS)),
    )


@settings(max_examples=300, deadline=None)
@given(cases())
def test_text_is_canonical_json_of_the_dict(case: Case) -> None:
    """Any case: text, dict and attributes' text equal canonical_json's and case_to_dict's."""
    forms = case_forms(case)
    data = case_to_dict(case)
    assert (forms.text, forms.data, forms.attributes_text) == (
        canonical_json(data),
        data,
        canonical_json(data["attributes"]),
    )
    assert list(forms.data) == list(data)  # the same key order, too


def test_each_instant_is_formatted_once_and_kept() -> None:
    """Equal instants share one text; stamps holds each instant the case names."""
    case = make_case(
        sentiment=(SentimentReading(-0.5, NOW),),
        sla_clocks=(SlaClock("first-response", NOW, NOW + timedelta(minutes=5)),),
        waiting_since=NOW.astimezone(timezone(timedelta(hours=-3))),
    )
    forms = case_forms(case)
    assert forms.stamps == {
        case.created_at: format_timestamp(case.created_at),
        NOW: "2026-11-21T10:00:00Z",
        NOW + timedelta(minutes=5): "2026-11-21T10:05:00Z",
    }


def test_a_nan_score_is_refused_as_canonical_json_refuses_it() -> None:
    """A non-finite number goes through canonical_json, which refuses it (ValueError)."""
    case = make_case(sentiment=(SentimentReading(float("nan"), NOW),))
    refusal = "^Out of range float values are not JSON compliant$"
    with pytest.raises(ValueError, match=refusal):
        canonical_json(case_to_dict(case))
    with pytest.raises(ValueError, match=refusal):
        case_forms(case)


@pytest.mark.parametrize("value", [None, 3, Tier.GOLD, 'plain "quoted" \u00e9\n'], ids=repr)
def test_string_json_is_canonical_json_for_any_value(value: object) -> None:
    """A plain str by the encoder's escaping, anything else through canonical_json: same text."""
    assert canonical_json(value) == string_json(value)
