"""Golden cases pin adaptive routing: the ladder step, what relaxed, the instants, continuity."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from caseroute.domain.decision import ContinuityOutcome
from caseroute.domain.errors import RulesetError
from caseroute.engine.decide import decide
from caseroute.rules.golden import load_golden, load_golden_file, run_golden
from caseroute.testing import REFERENCE_HOME, reference_ruleset

VERSION = REFERENCE_HOME / "2026.12.1"
ROSTER = (VERSION / "golden" / "roster-adaptive.yaml").read_text()
CASE = """\
      case_id: T-1
      created_at: "2026-11-21T09:50:00Z"
      channel: phone
      intent: clinical
      urgency: routine
      patient_location: US-TX
      region: US-TX
      preferred_language: fr
      preferred_agents:
        - {agent_id: nurse-tx-05, reason: previous_contact, last_contact_at: "2026-11-02T11:00:00Z"}
        - {agent_id: nurse-ca-01, reason: care_team}
"""


def _golden_file(tmp_path: Path, expect: str) -> Path:
    """A golden file with one held routine clinical case (roster beside it) and ``expect``."""
    (tmp_path / "roster-adaptive.yaml").write_text(ROSTER)
    path = tmp_path / "g.yaml"
    path.write_text(
        'now: "2026-11-21T10:00:00Z"\nroster: roster-adaptive.yaml\ncases:\n'
        "  - name: held\n    case:\n" + CASE + "    expect:\n" + expect
    )
    return path


HELD = """\
      outcome: QUEUE
      rule: clinical
      ladder_step: any-language
      relaxed: [language]
      next_relaxation_at: "2026-11-21T10:05:00Z"
      held_for_preferred_until: "2026-11-21T10:05:00+00:00"
      continuity: held_for_preferred
      preferred:
        nurse-tx-05: {status: held_for, detail: at capacity 5/5; case held until 10:05}
        nurse-ca-01: not_eligible
"""


def _mismatches(path: Path) -> list[str]:
    ruleset = reference_ruleset()
    (result,) = run_golden(load_golden_file(path), lambda c, r, now: decide(c, r, ruleset, now))
    return list(result.mismatches)


def test_adaptive_expectations_are_read_as_typed_values(tmp_path: Path) -> None:
    """Each adaptive key becomes a typed expectation (instants in UTC, outcome an enum)."""
    (case,) = load_golden_file(_golden_file(tmp_path, HELD))
    expect = case.expect
    at = datetime(2026, 11, 21, 10, 5, tzinfo=UTC)
    assert (
        expect.ladder_step,
        expect.relaxed,
        expect.next_relaxation_at,
        expect.held_for_preferred_until,
        expect.continuity,
        expect.preferred,
    ) == (
        "any-language",
        ("language",),
        at,
        at,
        ContinuityOutcome.HELD_FOR_PREFERRED,
        {
            "nurse-tx-05": ("held_for", "at capacity 5/5; case held until 10:05"),
            "nurse-ca-01": ("not_eligible", None),
        },
    )


def test_a_held_case_matching_every_adaptive_key_passes(tmp_path: Path) -> None:
    """The reference decides the held case exactly as the adaptive keys say."""
    assert _mismatches(_golden_file(tmp_path, HELD)) == []


def test_each_adaptive_mismatch_is_reported_in_words(tmp_path: Path) -> None:
    """Wrong step, relaxed list, instants, outcome and preferred statuses each give one line."""
    wrong = """\
      outcome: QUEUE
      rule: clinical
      ladder_step: null
      relaxed: []
      next_relaxation_at: null
      held_for_preferred_until: "2026-11-21T10:15:00Z"
      continuity: assigned_other
      preferred:
        nurse-tx-05: {status: held_for, detail: at capacity}
        nurse-ca-01: chosen
        nurse-tx-01: chosen
"""
    assert _mismatches(_golden_file(tmp_path, wrong)) == [
        "ladder_step: expected None, got 'any-language'",
        "relaxed: expected [], got ['language']",
        "next_relaxation_at: expected None, got '2026-11-21T10:05:00Z'",
        "held_for_preferred_until: expected '2026-11-21T10:15:00Z', got '2026-11-21T10:05:00Z'",
        "continuity: expected 'assigned_other', got 'held_for_preferred'",
        "preferred nurse-ca-01: expected 'chosen', got 'not_eligible'",
        "preferred nurse-tx-01: expected 'chosen', got not named",
        (
            "preferred nurse-tx-05 detail: expected 'at capacity', got "
            "'at capacity 5/5; case held until 10:05'"
        ),
    ]


def test_continuity_null_means_continuity_did_not_apply(tmp_path: Path) -> None:
    """`continuity: null` fails on a case where continuity applied, naming the outcome."""
    expect = "      outcome: QUEUE\n      rule: clinical\n      continuity: null\n"
    assert _mismatches(_golden_file(tmp_path, expect)) == [
        "continuity: expected None, got 'held_for_preferred'"
    ]


@pytest.mark.parametrize(
    ("line", "code", "where", "message"),
    [
        (
            '      next_relaxation_at: "soon"\n',
            "schema.format",
            ":20:27",
            (
                "expect.next_relaxation_at must be an RFC 3339 instant "
                "YYYY-MM-DDTHH:MM:SS[.fraction] ending in Z or +HH:MM / -HH:MM, e.g. "
                '"2026-11-21T10:10:00Z", or null'
            ),
        ),
        (
            '      held_for_preferred_until: "2026-11-21T10:05:00"\n',
            "schema.format",
            ":20:33",
            (
                "expect.held_for_preferred_until must be an RFC 3339 instant "
                "YYYY-MM-DDTHH:MM:SS[.fraction] ending in Z or +HH:MM / -HH:MM, e.g. "
                '"2026-11-21T10:10:00Z", or null'
            ),
        ),
        (
            "      continuity: held_for_preferrd\n",
            "schema.value",
            ":20:19",
            (
                "expect.continuity must be one of assigned_preferred, held_for_preferred, "
                "assigned_other, none_eligible; got 'held_for_preferrd' (did you mean "
                "'held_for_preferred'?)"
            ),
        ),
        (
            "      ladder_stp: any-language\n",
            "schema.unknown_key",
            ":20:7",
            "unknown field `ladder_stp` in `expect` (did you mean `ladder_step`?)",
        ),
    ],
)
def test_a_malformed_adaptive_expectation_is_located(
    tmp_path: Path, line: str, code: str, where: str, message: str
) -> None:
    """A bad instant, outcome or key name is a problem at file:line:column with what to write."""
    path = _golden_file(tmp_path, "      outcome: QUEUE\n      rule: clinical\n" + line)
    with pytest.raises(RulesetError) as exc:
        load_golden_file(path)
    assert [(p.code, p.location, p.message) for p in exc.value.problems] == [
        (code, f"{path}{where}", message)
    ]


def test_the_reference_golden_cases_pin_every_ladder_step_and_continuity_outcome() -> None:
    """2026.12.1's golden cases pin each step of both ladders, no step, and three outcomes."""
    cases = load_golden(VERSION)
    steps = {c.expect.ladder_step for c in cases if isinstance(c.expect.ladder_step, str)}
    outcomes = {
        c.expect.continuity for c in cases if isinstance(c.expect.continuity, ContinuityOutcome)
    }
    assert (steps, outcomes) == (
        {"any-language", "any-territory"},
        {
            ContinuityOutcome.ASSIGNED_PREFERRED,
            ContinuityOutcome.HELD_FOR_PREFERRED,
            ContinuityOutcome.ASSIGNED_OTHER,
        },
    )
    assert any(c.expect.ladder_step is None for c in cases)
