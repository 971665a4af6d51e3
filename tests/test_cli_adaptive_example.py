"""The README's adaptive-routing example: held for the previous nurse, then the best other."""

import pytest

from tests.test_cli import _decide


def test_the_example_case_is_held_for_its_away_previous_nurse(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """At 10:00 the routine case waits for nurse-tx-04 (away) until 10:07, as the README shows."""
    code, out = _decide(capsys, "held-for-previous-nurse.json")
    lines = out.splitlines()
    assert (code, lines[:3]) == (
        0,
        [
            (
                "CASE-1002: QUEUE in clinical (held for a preferred agent until "
                "2026-11-21T10:07:00Z), priority normal"
            ),
            "Decided by: clinical; reasons: clinical, held_for_preferred_agent",
            "Ask again at 2026-11-21T10:07:00Z (the hold for a preferred agent ends)",
        ],
    )
    assert "      status away; case held until 10:07" in lines


def test_once_the_hold_is_over_the_best_other_nurse_gets_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """At 10:07 the hold has ended: ASSIGN to nurse-tx-02, and the trace says the hold expired."""
    code, out = _decide(capsys, "held-for-previous-nurse.json", "--now", "2026-11-21T10:07:00Z")
    lines = out.splitlines()
    assert (code, lines[0]) == (
        0,
        "CASE-1002: ASSIGN to nurse-tx-02 (queue clinical), priority normal",
    )
    assert "      status away; hold expired 10:07" in lines
