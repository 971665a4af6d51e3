"""Several refused masked field paths are numbered on one line.

Review S43a: every problem holds `; ` itself, so problems joined with `; ` read as one run-on
sentence.
"""

import pytest

from caseroute.audit.config import check_masked_fields
from caseroute.domain.errors import ConfigError


def _refusal(*paths: str) -> str:
    with pytest.raises(ConfigError) as refused:
        check_masked_fields(paths)
    return str(refused.value)


def test_several_problems_are_numbered_on_one_line() -> None:
    """`3 problems in the masked field list: (1) ... (2) ... (3) ...`, each ending its sentence."""
    message = _refusal("case.case_id", "case.created_at", "roster.x")
    starts = [message.index(f"({n}) case.") for n in (1, 2)] + [message.index("(3) invalid")]
    assert (
        message.startswith("3 problems in the masked field list: (1) case.case_id cannot"),
        "\n" in message,
        starts == sorted(starts),
        message.count(". (2) ") + message.count(". (3) "),
        message.endswith("Roster data is staff data and is not masked."),
    ) == (True, False, True, 2, True)


def test_one_problem_is_not_numbered() -> None:
    """A single refusal reads as before: no count, no `(1)`."""
    assert _refusal("case.case_id").startswith("case.case_id cannot be masked:")
