"""A decision log of eleven known decisions for the operations report tests.

Ruleset ``test`` (versions 1 and 2, same rules): critical cases escalate (``critical_case``),
billing enquiries are exceptions (``billing_by_hand``), the rest route with language and
territory soft under ladder ``lang`` (``any-language`` prefers language after 10 min,
``any-territory`` relaxes territory after 30 min) and continuity holds routine cases 15 min.
``DECISIONS`` lists each decision: hours after ``NOW``, minutes waited since ``created_at``,
the case's overrides, and what it comes out as (asserted by ``record_ops_log``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from caseroute.domain.case import (
    ContinuityReason,
    Intent,
    PreferredAgent,
    SlaClock,
    Urgency,
)
from caseroute.domain.roster import Capacity
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.service import DecideCommand, RulesetRegistry
from caseroute.testing import (
    ADAPTIVE_HEADER,
    NOW,
    audited_core,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

HEADER = ADAPTIVE_HEADER
RULES = """\
  - id: critical
    when: case.urgency == 'critical'
    then: {escalate: {queue: senior, level: 1, reason: critical_case}}
  - id: billing
    when: case.intent == 'billing'
    then: {exception: {queue: exceptions, reason: billing_by_hand}}
  - id: rest
    when: true
    then: {route: {queue: by_intent, soft: [language, territory], ladder: lang}}
"""
TEXT_V1 = ruleset_with_rules(RULES, HEADER)
TEXT_V2 = TEXT_V1.replace('version: "1"', 'version: "2"')
ROSTER = make_roster(
    make_agent("a1"),
    make_agent("a2", capacity=Capacity(max=5, active=5)),
    make_agent("a3", territories=frozenset({"US-CA"}), languages=frozenset({"es"})),
)
DAY2 = NOW + timedelta(days=1)
"""Version 2 decides on the second day."""
PATIENT_NAME = "Ada Lovelace"
"""Every case carries it (masked in the log); no report may print it."""


def _prefer(agent_id: str) -> tuple[PreferredAgent, ...]:
    return (PreferredAgent(agent_id, ContinuityReason.PREVIOUS_CONTACT, NOW - timedelta(days=3)),)


def _clock(now: datetime, minutes_left: float) -> tuple[SlaClock, ...]:
    return (SlaClock("rtt", now - timedelta(hours=2), now + timedelta(minutes=minutes_left)),)


# (version, decision instant, minutes waited, case overrides, expected outcome)
DECISIONS: list[tuple[str, datetime, float, dict[str, Any], str]] = [
    # C0: no es-speaker in Texas; any-language (10m) admits a1 -> ASSIGN, language relaxed.
    ("1", NOW, 12, {"preferred_language": "es"}, "ASSIGN"),
    # C1: 5 min, nothing relaxed yet -> QUEUE; its SLA clock has 500 min left (ok).
    ("1", NOW, 5, {"preferred_language": "es", "sla": 500}, "QUEUE"),
    # C2: critical -> ESCALATE critical_case; its clock breached 5 min ago.
    ("1", NOW + timedelta(hours=1), 2, {"urgency": Urgency.CRITICAL, "sla": -5}, "ESCALATE"),
    # C3: billing -> EXCEPTION billing_by_hand.
    ("1", NOW + timedelta(hours=1), 30, {"intent": Intent.BILLING}, "EXCEPTION"),
    # C4: safeguarding flag -> ESCALATE safeguarding_concern; 30 min left (at risk, < 60).
    (
        "1",
        NOW + timedelta(hours=2),
        1,
        {"flags": frozenset({"safeguarding"}), "sla": 30},
        "ESCALATE",
    ),
    # C5: preferred a1 is eligible -> ASSIGN assigned_preferred (any-language active).
    ("1", NOW + timedelta(hours=2), 20, {"preferred_agents": _prefer("a1")}, "ASSIGN"),
    # C6: preferred a2 is at capacity, hold 15m not over -> QUEUE held_for_preferred.
    ("1", NOW + timedelta(hours=3), 12, {"preferred_agents": _prefer("a2")}, "QUEUE"),
    # C7: preferred a3 is in California -> ASSIGN a1, assigned_other.
    (
        "1",
        NOW + timedelta(hours=3),
        12,
        {"intent": Intent.GENERAL, "preferred_agents": _prefer("a3")},
        "ASSIGN",
    ),
    # C8: 40 min: any-territory active, language and territory relaxed -> ASSIGN.
    ("1", NOW + timedelta(hours=4), 40, {"preferred_language": "es"}, "ASSIGN"),
    # C9 (version 2, day 2): a1 eligible as written -> ASSIGN, no step in force.
    ("2", DAY2, 3, {}, "ASSIGN"),
    # C10 (version 2, day 2): critical -> ESCALATE critical_case.
    ("2", DAY2, 4, {"urgency": Urgency.CRITICAL}, "ESCALATE"),
]


def record_ops_log(directory: Path) -> Path:
    """Decide ``DECISIONS`` (one call each) into a new log in ``directory``; return its path."""
    registry = RulesetRegistry()
    for text in (TEXT_V1, TEXT_V2):
        registry.add(prepare_ruleset(compile_text(text), EngineKind.PYTHON))
    core = audited_core(registry, directory)
    for i, (version, now, waited, overrides, expected) in enumerate(DECISIONS):
        fields = dict(overrides)
        if "sla" in fields:
            fields["sla_clocks"] = _clock(now, fields.pop("sla"))
        case = make_case(
            case_id=f"C{i}",
            created_at=now - timedelta(minutes=waited),
            attributes={"patient_name": PATIENT_NAME},
            **fields,
        )
        result = core.decide(DecideCommand(f"r{i}", "test", version, (case,), ROSTER, now))
        assert expected == result.decisions[0].outcome.value, f"C{i}"
    core.audit.close()
    registry.close()
    return directory / "audit.db"
