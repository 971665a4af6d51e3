"""A small decision log recorded under a purpose-built ruleset, and candidates that change it.

The base ruleset ``test@1`` escalates urgent cases (rule ``urgent``) and routes the rest by
intent (rule ``rest``). Three cases are recorded: C1 (routine, carrying a masked ``notes``
attribute) and C3 (routine) in one batch, so C3's roster has C1's assignment applied, and C2
(urgent) alone. Each ``CANDIDATE_*`` text changes one thing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from caseroute.audit.store import SqliteAuditStore
from caseroute.domain.case import Intent, Urgency
from caseroute.domain.roster import Capacity, Roster
from caseroute.engine.case_rules import EngineKind, prepare_ruleset
from caseroute.replay import CandidateSource
from caseroute.service import DecideCommand, RoutingCore, RulesetRegistry
from caseroute.testing import (
    MINIMAL_HEADER,
    NOW,
    audit_config,
    audited_core,
    compile_text,
    make_agent,
    make_case,
    make_roster,
    ruleset_with_rules,
)

URGENT_RULE = """\
  - id: urgent
    when: case.urgency == 'urgent'
    then: {escalate: {queue: senior, level: 1, reason: urgent}}
"""
REST_RULE = """\
  - id: rest
    when: true
    then: {route: {queue: by_intent, reason: rest}}
"""
BASE = ruleset_with_rules(URGENT_RULE + REST_RULE)
"""``test@1``: what decided the recorded log."""


def candidate_text(rules: str, header: str = MINIMAL_HEADER) -> str:
    """A ``test@2`` ruleset with ``rules`` after the safeguarding rule."""
    return ruleset_with_rules(rules, header.replace('version: "1"', 'version: "2"'))


CANDIDATES: dict[str, str] = {
    "identity": candidate_text(URGENT_RULE + REST_RULE),
    "queue": candidate_text(URGENT_RULE + REST_RULE.replace("by_intent", "overflow")),
    "priority": candidate_text(
        URGENT_RULE + REST_RULE.replace("reason: rest}}", "reason: rest}, priority: high}")
    ),
    "agent": candidate_text(
        URGENT_RULE
        + REST_RULE.replace(
            "reason: rest}", "reason: rest, skills: [{name: billing, min_level: 1}]}"
        )
    ),
    "deciding_rule": candidate_text(URGENT_RULE + REST_RULE.replace("id: rest", "id: fallback")),
    "escalation_removed": candidate_text(REST_RULE),
    "escalation_added": candidate_text(
        URGENT_RULE.replace("case.urgency == 'urgent'", "case.intent == 'general'").replace(
            "level: 1", "level: 2"
        )
        + REST_RULE
    ),
    "new_exception": candidate_text(
        URGENT_RULE
        + REST_RULE.replace(
            "{route: {queue: by_intent, reason: rest}}",
            "{exception: {queue: exceptions, reason: rest}}",
        )
    ),
    "masked_read": candidate_text(
        URGENT_RULE
        + """\
  - id: noted
    when: case.attributes.notes == 'call back'
    then: {route: {queue: callbacks, reason: noted}}
"""
        + REST_RULE,
        MINIMAL_HEADER + "attributes:\n  notes: string\n",
    ),
}
"""Candidate name -> ruleset text."""


def candidate(name: str) -> CandidateSource:
    """One of ``CANDIDATES`` as a replay candidate."""
    return CandidateSource(f"{name}.yaml", CANDIDATES[name])


def roster_of_two() -> Roster:
    """a1 (idle, no skills beyond triage) and a2 (busier, billing skill)."""
    return make_roster(
        make_agent("a1", capacity=Capacity(max=5, active=0)),
        make_agent("a2", capacity=Capacity(max=5, active=2), skills={"billing": 2}),
    )


def record_log(
    directory: Path,
    text: str = BASE,
    *,
    agent_detail: bool = True,
    masked_fields: tuple[str, ...] | None = None,
) -> SqliteAuditStore:
    """Record C1+C3 (one batch) and C2 under ``text`` into a new log in ``directory``.

    ``agent_detail=False`` records SUMMARY explanations (failed-check bitmasks, no per-agent
    verdicts), as callers of the Python client and `simulate --no-agent-detail` get.
    ``masked_fields``: the log's masked field list (None: the defaults).
    """
    registry = RulesetRegistry()
    registry.add(prepare_ruleset(compile_text(text), EngineKind.PYTHON))
    core: RoutingCore
    if masked_fields is None:
        core = audited_core(registry, directory)
    else:
        config = replace(audit_config(directory), masked_fields=masked_fields)
        core = RoutingCore(registry, config.open_store(), config.masker(), lambda: NOW)
    roster = roster_of_two()
    routine = {"intent": Intent.GENERAL, "urgency": Urgency.ROUTINE}
    batch = (
        make_case(case_id="C1", attributes={"notes": "call back"}, **routine),
        make_case(case_id="C3", **routine),
    )
    core.decide(DecideCommand("r1", "", "", batch, roster, NOW, agent_detail))
    urgent = make_case(case_id="C2", intent=Intent.GENERAL, urgency=Urgency.URGENT)
    core.decide(DecideCommand("r2", "", "", (urgent,), roster, NOW, agent_detail))
    registry.close()
    store = core.audit
    assert isinstance(store, SqliteAuditStore)
    return store
