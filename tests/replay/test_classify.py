"""classify(): the difference classes of one comparison, and the agent checks that changed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from caseroute.domain.decision_side import DecisionSide, RecordedDecisionError, recorded_side
from caseroute.replay.classify import (
    MAX_AGENT_CHANGES,
    AgentCheckChange,
    agent_check_changes,
    classify,
    outcome_pair,
)

ASSIGNED = DecisionSide("rest", "ASSIGN", "a1", "general", "normal", None)
ESCALATED = DecisionSide("urgent", "ESCALATE", None, "senior", "high", 1)


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (ASSIGNED, ("unchanged",)),
        (replace(ASSIGNED, agent_id="a2"), ("agent_changed",)),
        (replace(ASSIGNED, queue="overflow"), ("queue_changed",)),
        (replace(ASSIGNED, priority="high"), ("priority_changed",)),
        (replace(ASSIGNED, rule_id="fallback"), ("deciding_rule_changed",)),
        (
            ESCALATED,
            (
                "outcome_changed",
                "agent_changed",
                "queue_changed",
                "priority_changed",
                "escalation_added",
            ),
        ),
        (
            DecisionSide("data:invalid_case_data", "EXCEPTION", None, "exceptions", "normal", None),
            ("outcome_changed", "agent_changed", "queue_changed", "new_exception"),
        ),
    ],
)
def test_classes_from_an_assignment(candidate: DecisionSide, expected: tuple[str, ...]) -> None:
    """Each field that differs from a recorded ASSIGN puts the record in its class."""
    assert classify(ASSIGNED, candidate) == expected


def test_escalation_level_lowered_is_removed_and_raised_is_added() -> None:
    """Same outcome, level 2 -> 1 is escalation_removed; 1 -> 2 is escalation_added."""
    higher = replace(ESCALATED, escalation_level=2)
    assert (classify(higher, ESCALATED), classify(ESCALATED, higher)) == (
        ("escalation_removed",),
        ("escalation_added",),
    )


def test_rule_change_with_outcome_change_is_not_deciding_rule_changed() -> None:
    """deciding_rule_changed is for the same outcome only; an outcome change is its own class."""
    assert "deciding_rule_changed" not in classify(ASSIGNED, ESCALATED)


def test_exception_to_exception_is_not_a_new_exception() -> None:
    """A record that already was an EXCEPTION is not a new exception, only a rule change."""
    recorded = DecisionSide("data:x", "EXCEPTION", None, "exceptions", "normal", None)
    assert classify(recorded, replace(recorded, rule_id="engine:error")) == (
        "deciding_rule_changed",
    )


def test_outcome_pair_names_recorded_then_candidate() -> None:
    """The pair reads RECORDED->CANDIDATE, and is None when the outcome is the same."""
    assert (outcome_pair(ASSIGNED, ESCALATED), outcome_pair(ASSIGNED, ASSIGNED)) == (
        "ASSIGN->ESCALATE",
        None,
    )


def _decision(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "rule_id": "rest",
        "outcome": "ASSIGN",
        "agent_id": "a1",
        "queue": "general",
        "priority": "normal",
        "escalation_level": None,
    }
    data.update(fields)
    return data


def test_recorded_side_reads_a_stored_decision() -> None:
    """The comparable fields come from the stored decision dict as they are."""
    assert recorded_side(_decision()) == ASSIGNED


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        ({"rule_id": "x"}, "the recorded decision has no 'outcome'"),
        (_decision(outcome=3), "the recorded decision's outcome is not a string"),
        (_decision(agent_id=7), "the recorded decision's agent_id is not a string"),
        (
            _decision(escalation_level=True),
            "the recorded decision's escalation_level is not a number",
        ),
        ([], "the recorded decision is not a JSON object"),
    ],
)
def test_recorded_side_refuses_a_malformed_decision(decision: Any, message: str) -> None:
    """A stored decision missing a field or of the wrong type is refused, naming the field."""
    with pytest.raises(RecordedDecisionError) as caught:
        recorded_side(decision)
    assert str(caught.value) == message


def _verdicts(*agents: tuple[str, list[str]]) -> dict[str, Any]:
    return {
        "explanation": {
            "matching": {
                "agents": [
                    {"agent_id": a, "eligible": not f, "failures": [{"check": c} for c in f]}
                    for a, f in agents
                ]
            }
        }
    }


def test_agent_check_changes_list_agents_whose_failures_differ() -> None:
    """Only agents whose failed checks differ are listed, by id; missing verdicts are None."""
    recorded = _verdicts(("a1", []), ("a2", ["capacity"]), ("a3", ["licence"]))
    candidate = _verdicts(("a1", ["skills"]), ("a2", ["capacity"]), ("a4", []))
    assert agent_check_changes(recorded, candidate) == (
        AgentCheckChange("a1", (), ("skills",)),
        AgentCheckChange("a3", ("licence",), None),
        AgentCheckChange("a4", None, ()),
    )


def test_agent_check_changes_are_capped() -> None:
    """At most MAX_AGENT_CHANGES agents are listed per record."""
    recorded = _verdicts(*((f"a{i:02d}", []) for i in range(30)))
    candidate = _verdicts(*((f"a{i:02d}", ["status"]) for i in range(30)))
    changes = agent_check_changes(recorded, candidate)
    assert [c.agent_id for c in changes] == [f"a{i:02d}" for i in range(MAX_AGENT_CHANGES)]


def test_agent_check_changes_without_matching_are_empty() -> None:
    """Decisions without per-agent verdicts (no matching, detail off) list no agent changes."""
    assert agent_check_changes(_decision(), {"explanation": {"matching": None}}) == ()


def test_no_agent_changes_when_the_recording_kept_no_verdicts() -> None:
    """A decision recorded with agent detail off (masks, no verdicts) lists no agent changes."""
    summary = {"explanation": {"matching": {"agents": [], "failed_masks": [["skills", "0x1"]]}}}
    assert agent_check_changes(summary, _verdicts(("a1", ["skills"]))) == ()


@pytest.mark.parametrize(
    "matching",
    [
        {"considered": 2, "eligible": 2, "agents": [], "failed_masks": []},  # all eligible
        {"considered": 2, "eligible": 1, "exclusion_counts": [{"check": "skills", "agents": 1}]},
    ],
    ids=["summary-all-eligible", "exported-summary"],
)
def test_no_agent_changes_when_a_summary_kept_no_masks(matching: dict[str, Any]) -> None:
    """A summary with agents considered but no bitmasks (all eligible; an export) lists none."""
    summary = {"explanation": {"matching": matching}}
    assert agent_check_changes(summary, _verdicts(("a1", ["skills"]))) == ()


@pytest.mark.parametrize(
    "matching",
    [{"considered": 0, "eligible": 0}, {"considered": True}, {"agents": {"a1": []}}],
    ids=["empty-roster", "bool-count", "agents-not-a-list"],
)
def test_a_matching_without_agents_or_a_count_reads_as_no_agent_evaluated(
    matching: dict[str, Any],
) -> None:
    """No agent considered (or no readable count or verdict list): the candidate's are listed."""
    recorded = {"explanation": {"matching": matching}}
    assert agent_check_changes(recorded, _verdicts(("a1", ["skills"]))) == (
        AgentCheckChange("a1", None, ("skills",)),
    )
