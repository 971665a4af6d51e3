"""Jurisdictions and language tags fold ASCII only: a letter that upper-cases into ASCII is refused.

Review L4: ``str.upper`` folds the long s (U+017F), the dotless i (U+0131), the sharp s and
ligatures such as U+FB06 into ASCII letters, so ``us-tx`` spelt with a long s was read as
``US-TX`` (a licence taken for Texas's)
while fullwidth letters were refused. Now anything outside ASCII is refused, naming the field,
the character and what to send. These go through ``parse_case`` / ``parse_roster`` (the CLI's
and golden cases' path, its dict fast path first); ``tests/wire`` covers the protobuf paths.
"""

from functools import partial

import pytest

from caseroute.domain import codec
from caseroute.domain.codec import parse_case, parse_roster
from caseroute.domain.errors import FieldViolation
from caseroute.testing import agent_data, case_data, request_violations, roster_data

_case = partial(case_data, region="US-TX")

FOLDING = [
    ("u\u017f-tx", "\u017f", "017F"),  # long s: upper() is S
    ("US-\u0131d", "\u0131", "0131"),  # dotless i: upper() is I (US-ID)
    ("DE-\u00df", "\u00df", "00DF"),  # sharp s: upper() is SS (DE-SS)
    ("US-\ufb06", "\ufb06", "FB06"),  # the st ligature: upper() is ST
    ("\ufb00-TX", "\ufb00", "FB00"),  # the ff ligature: upper() is FF
]


def _words(sent: str, char: str, code: str) -> str:
    return (
        f"{sent!r} holds {char!r} (U+{code}), which is not ASCII; write the jurisdiction as an "
        "ISO 3166 code in ASCII letters and digits, such as US-TX or GB-ENG (letters outside "
        "ASCII are refused, never folded into ASCII ones)"
    )


@pytest.mark.parametrize(("sent", "char", "code"), FOLDING)
def test_a_patient_location_folding_into_ascii_is_refused(sent: str, char: str, code: str) -> None:
    """case.patient_location 'us-tx' with a long s (and the other folds): refused, named."""
    assert [FieldViolation("case.patient_location", _words(sent, char, code))] == (
        request_violations(_case(patient_location=sent))
    )


@pytest.mark.parametrize(("sent", "char", "code"), FOLDING)
def test_a_licence_jurisdiction_folding_into_ascii_is_refused(
    sent: str, char: str, code: str
) -> None:
    """A licence issued in 'us-tx' with a long s is not a Texas one: refused at its jurisdiction."""
    agent = agent_data(licences=[{"type": "RN", "jurisdiction": sent, "expires_on": "2030-01-01"}])
    assert [
        FieldViolation("roster.agents[0].licences[0].jurisdiction", _words(sent, char, code))
    ] == request_violations(roster_data(agent), parse_roster)


def test_ascii_jurisdictions_are_still_trimmed_and_upper_cased() -> None:
    """' us-tx ' is still US-TX, and a licence's 'gb-eng' GB-ENG: only ASCII folds."""
    agent = agent_data(
        licences=[{"type": "RN", "jurisdiction": "gb-eng", "expires_on": "2030-01-01"}]
    )
    roster = parse_roster(roster_data(agent))
    assert (
        parse_case(_case(patient_location=" us-tx ")).patient_location,
        roster.agents[0].licences[0].jurisdiction,
    ) == ("US-TX", "GB-ENG")


def test_the_shared_normalisers_fold_ascii_only() -> None:
    """normalise_jurisdiction / normalise_language leave text holding non-ASCII unfolded."""
    assert (
        codec.normalise_jurisdiction(" us-tx "),
        codec.normalise_jurisdiction(" u\u017f-tx "),
        codec.normalise_language(" EN_gb "),
        codec.normalise_language("\u212ao"),
        codec.jurisdiction_problem(" US-TX\n"),
    ) == ("US-TX", "u\u017f-tx", "en-gb", "\u212ao", None)


def test_a_language_tag_holding_the_kelvin_sign_is_refused() -> None:
    """'\u212ao' lower-cases to 'ko' (Korean): refused as a language tag, never folded."""
    violations = request_violations(_case(preferred_language="\u212ao"))
    agent_violations = request_violations(
        roster_data(agent_data(languages=["\u212ao"])), parse_roster
    )
    assert (
        [v.field for v in violations],
        [v.field for v in agent_violations],
    ) == (["case.preferred_language"], ["roster.agents[0].languages[0]"])
