"""A masked attribute name longer than the server lets a caller send is refused at start.

Review S43a: `case.attributes.NAME` with NAME over `--max-id-chars` was accepted, though the
server refuses every case sending such a name, so it masked nothing while the list replaced
the defaults.
"""

from functools import partial

import pytest

from caseroute.audit.config import check_masked_fields
from caseroute.domain.errors import ConfigError


def _refusal(*paths: str, max_name_chars: int) -> str:
    with pytest.raises(ConfigError) as refused:
        partial(check_masked_fields, max_name_chars=max_name_chars)(paths)
    return str(refused.value)


def test_an_attribute_name_over_the_limit_is_refused_beside_other_problems() -> None:
    """The name, its length and the limit; a name at the limit, `*` and defaults pass."""
    over = "case.attributes." + "n" * 11
    message = _refusal(over, "case.case_id", max_name_chars=10)
    assert (
        message.startswith("2 problems in the masked field list: (1) "),
        f"(1) {over} would mask nothing: its attribute name is 11 characters, and the server "
        "refuses a case sending an attribute name longer than 10 (--max-id-chars)" in message,
    ) == (True, True)
    accepted = ("defaults", "case.attributes." + "n" * 10, "case.attributes.*", "case.region")
    assert check_masked_fields(accepted, max_name_chars=10)[-3:] == accepted[1:]


def test_a_long_name_is_shown_by_its_start_and_length() -> None:
    """A name pasted by mistake is not quoted whole (as for any path over 120 characters)."""
    message = _refusal("case.attributes." + "n" * 5000, max_name_chars=200)
    assert (len(message) < 600, "... (5016 characters) would mask nothing" in message) == (
        True,
        True,
    )


@pytest.mark.parametrize(
    ("path", "limit_named"),
    [
        ("Case.attributes.insurance_number", True),  # no valid shape: _shape_hint
        ("case.insurance_number", True),  # no such field: _nearest_path
        ("case.attributes.Insurance_Number", True),  # not lower_snake_case
        ("case.attributes.insurance_number.plan", True),  # below a single value
    ],
)
def test_a_refusal_under_the_limit_suggests_no_name_over_it(path: str, limit_named: bool) -> None:
    """Advice never names a path the limit refuses (serve refused the advice in turn)."""
    message = _refusal(path, max_name_chars=10)
    assert (
        "did you mean case.attributes.insurance_number?" in message,
        "mask case.attributes.insurance_number itself" in message,
        "longer than 10 (--max-id-chars)" in message,
    ) == (False, False, limit_named)
