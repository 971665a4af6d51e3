"""A one-character flag is refused: it is a string taken one letter at a time.

``frozenset("safeguarding")`` in the Python API, or JSON ``"flags": ["s", "a", "f", ...]``, was
read as the flags ``s``, ``a``, ``f``...: a case without its safeguarding flag, which could be
ASSIGNED. No flag is one character, so each is now a request error naming its field.
"""

from __future__ import annotations

import pytest

from caseroute.domain.codec import parse_case
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.limits import DEFAULT_LIMITS
from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE
from caseroute.testing import case_data, make_case
from caseroute.wire import convert, fast

ADVICE = (
    "is a one-character flag; a flag is a word such as safeguarding, so a string was probably "
    'passed where a list of flags goes: send ["safeguarding"] (in Python '
    'frozenset({"safeguarding"}), not frozenset("safeguarding"))'
)


def _violations(flags: list[str]) -> list[FieldViolation]:
    with pytest.raises(RequestError) as caught:
        parse_case(case_data(flags=flags))
    return list(caught.value.violations)


def test_a_string_sent_as_a_list_of_letters_is_refused_at_each_letter() -> None:
    """``list("safeguarding")`` is refused at case.flags[i], capped as any list's problems."""
    assert [
        FieldViolation("case.flags", SAFEGUARDING_NOTICE),  # the letters spell the flag
        FieldViolation("case.flags[0]", f"'s' {ADVICE}"),
        FieldViolation("case.flags[1]", f"'a' {ADVICE}"),
        FieldViolation("case.flags[2]", f"'f' {ADVICE}"),
        FieldViolation("case.flags[3]", f"'e' {ADVICE}"),
        FieldViolation("case.flags[4]", f"'g' {ADVICE}"),
        FieldViolation(
            "case.flags", "7 more problem(s) in this list not shown; fix the ones above and resend"
        ),
    ] == _violations(list("safeguarding"))


@pytest.mark.parametrize(
    ("flag", "read"),
    [("x", "x"), ("X", "x"), (" x\n", "x"), ("7", "7"), ("\uff58", "x")],  # last: fullwidth x
)
def test_one_character_among_words_is_refused_after_normalising(flag: str, read: str) -> None:
    """Any spelling that normalises to one character is refused at its index."""
    assert [FieldViolation("case.flags[1]", f"'{read}' {ADVICE}")] == _violations(["vip", flag])


def test_two_characters_are_still_a_flag() -> None:
    """The control: ``ab`` is a flag on both parsers."""
    msg = convert.case_to_proto(make_case())
    msg.flags[:] = ["AB"]
    assert (frozenset({"ab"}), frozenset({"ab"})) == (
        parse_case(case_data(flags=["ab"])).flags,
        fast.case_from_proto(msg, DEFAULT_LIMITS).flags,
    )


def test_the_protobuf_path_refuses_a_letter_as_the_json_path_does() -> None:
    """The fast path doubts it, and the strict conversion names case.flags[0]."""
    msg = convert.case_to_proto(make_case())
    msg.flags[:] = ["s", "a"]
    with pytest.raises(fast.Doubt):
        fast.case_from_proto(msg, DEFAULT_LIMITS)
    with pytest.raises(RequestError) as caught:
        convert.case_from_proto(msg)
    assert [
        FieldViolation("case.flags[0]", f"'s' {ADVICE}"),
        FieldViolation("case.flags[1]", f"'a' {ADVICE}"),
    ] == list(caught.value.violations)
