"""A refused case whose malformed `flags` still carry safeguarding gets the plain notice first.

The notice (docs/rulesets.md, "A flagged case with invalid data") tells an orchestrator to hand
a refused case to the safeguarding team. A case built in Python with ``flags="safeguarding"``
got it (review R29b F5), but the same mistake sent as JSON, ``"flags": "safeguarding"``, and a
flag the pattern refuses only for an invisible character, or a string spread into letters,
were refused without it: nothing told the caller the refused case was a safeguarding concern.
"""

from __future__ import annotations

import pytest

from caseroute.domain.codec import parse_case
from caseroute.domain.errors import FieldViolation, RequestError
from caseroute.domain.safeguarding_notice import SAFEGUARDING_NOTICE
from caseroute.testing import case_data


def _violations(flags: object) -> list[FieldViolation]:
    with pytest.raises(RequestError) as caught:
        parse_case(case_data(flags=flags))
    return list(caught.value.violations)


@pytest.mark.parametrize(
    "flags",
    [
        "safeguarding",  # a string where the list goes
        " Safeguarding ",
        ["vip", "safeguarding\u200b"],  # a zero-width space the pattern refuses
        ["safe\u00adguarding"],  # a soft hyphen
        list("safeguarding"),  # a string taken one letter at a time
        {"safeguarding": True},  # flags sent as a map of flag -> set
        {"vip": True, "Safeguarding": False},  # the key names it, whatever the value says
        [["safeguarding"]],  # a list of flags wrapped in another list
        ["vip", ["safeguarding", "x"]],
    ],
)
def test_malformed_flags_carrying_safeguarding_get_the_notice_first(flags: object) -> None:
    """The first violation is the notice, before the one naming the malformed flags."""
    violations = _violations(flags)
    assert FieldViolation("case.flags", SAFEGUARDING_NOTICE) == violations[0]
    assert len(violations) > 1


@pytest.mark.parametrize(
    "flags", ["vip", ["vip", "x\u200by"], list("vipcase"), {"vip": True}, [["vip"]]]
)
def test_malformed_flags_without_safeguarding_get_no_notice(flags: object) -> None:
    """The control: the notice is not given to every malformed flag."""
    assert SAFEGUARDING_NOTICE not in [v.message for v in _violations(flags)]
