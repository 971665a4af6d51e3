"""decision_to_dict formats each instant once per decision, and every field as it always was."""

from datetime import UTC, datetime, timedelta, timezone

from caseroute.domain.decision import (
    ContinuityOutcome,
    ContinuityTrace,
    Decision,
    Explanation,
    LadderStepTrace,
    Outcome,
    PreferredAgentTrace,
    Priority,
    RelaxationTrace,
    SentimentSummary,
    Signals,
    StepStatus,
)
from caseroute.domain.decision_codec import decision_to_dict

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 21, 10, 5, tzinfo=UTC)
# The instant LATER, written in another zone: equal to it, and formatted in UTC alike.
LATER_PLUS_ONE = datetime(2026, 11, 21, 11, 5, tzinfo=timezone(timedelta(hours=1)))
FINE = datetime(2026, 11, 21, 9, 55, 30, 250, tzinfo=UTC)


def _decision() -> Decision:
    step = LadderStepTrace("widen", StepStatus.PENDING, LATER, 5.0, ("skill",), (), "why", 3)
    never = LadderStepTrace("never", StepStatus.NEVER, None, None, (), (), "", 0)
    relaxation = RelaxationTrace(
        "ladder", "created_at", FINE, 4.5, (), ("skill",), (), (), 1, (step, never), LATER, "s"
    )
    continuity = ContinuityTrace(
        ContinuityOutcome.HELD_FOR_PREFERRED,
        30.0,
        15.0,
        LATER_PLUS_ONE,
        (
            PreferredAgentTrace("a1", "previous", FINE, "busy", "at capacity"),
            PreferredAgentTrace("a2", "named", None, "unknown", ""),
        ),
    )
    signals = Signals(4.5, (), None, SentimentSummary(0, None, None, None, 0), 30.0, -0.3, 3)
    explanation = Explanation(
        "d1", "reference", "1", "0" * 64, "1.0", "python", NOW, "1" * 64, signals, (), (),
        "r1", None, ("held",), relaxation, continuity,
    )  # fmt: skip
    return Decision(
        "d1", "C1", Outcome.QUEUE, "q", None, None, Priority.NORMAL, ("held",), "r1",
        explanation, LATER, LATER_PLUS_ONE,
    )  # fmt: skip


def test_every_instant_field_is_its_own_utc_text_when_instants_repeat() -> None:
    """Equal instants in other zones and repeated objects each give their UTC text."""
    data = decision_to_dict(_decision())
    e = data["explanation"]
    relaxation, continuity = e["relaxation"], e["continuity"]
    assert [
        e["now"],
        relaxation["anchor_at"],
        relaxation["steps"][0]["at"],
        relaxation["steps"][1]["at"],
        relaxation["next_relaxation_at"],
        continuity["hold_until"],
        continuity["preferred"][0]["last_contact_at"],
        continuity["preferred"][1]["last_contact_at"],
        data["next_relaxation_at"],
        data["held_for_preferred_until"],
    ] == [
        "2026-11-21T10:00:00Z",
        "2026-11-21T09:55:30.000250Z",
        "2026-11-21T10:05:00Z",
        None,
        "2026-11-21T10:05:00Z",
        "2026-11-21T10:05:00Z",
        "2026-11-21T09:55:30.000250Z",
        None,
        "2026-11-21T10:05:00Z",
        "2026-11-21T10:05:00Z",
    ]


def test_a_decision_without_traces_gives_null_instants() -> None:
    """No relaxation, no continuity, nothing pending: only ``now`` is an instant's text."""
    d = _decision()
    bare = Decision(
        d.decision_id, d.case_id, Outcome.QUEUE, "q", None, None, Priority.NORMAL, (), "r1",
        Explanation(
            "d1", "reference", "1", "0" * 64, "1.0", "python", LATER_PLUS_ONE, "1" * 64,
            d.explanation.signals, (), (), "r1", None, (),
        ),
    )  # fmt: skip
    data = decision_to_dict(bare)
    assert [data["explanation"]["now"], data["next_relaxation_at"]] == [
        "2026-11-21T10:05:00Z",
        None,
    ]
    assert [data["explanation"]["relaxation"], data["explanation"]["continuity"]] == [None, None]
