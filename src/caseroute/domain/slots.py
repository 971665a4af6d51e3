"""Agent, Licence and rule-trace values built without their frozen ``__init__``.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (~1.2-1.7 us
for Agent's 12); the slot descriptors' own setters take half that, once per agent of a cold
roster. Agent and Licence have no ``__post_init__``, and this module fails at import if their
fields change, so ``object.__new__`` plus every setter gives the value their constructor gives
(``tests/wire/test_fast_known_agents.py`` and ``tests/domain/test_fast_dict_handover.py``
compare with the strict parsers'). Used by ``wire.fast`` (protobuf) and ``domain.fast_dict``
(dicts). ``RuleTrace`` and ``ClauseTrace`` (no ``__post_init__`` either) are built the same
way by ``engine.trace``, every rule and clause of every explanation rendered
(``tests/engine/test_trace_render.py``).
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any

from caseroute.domain.case import AttributeValue
from caseroute.domain.decision import ClauseTrace, RuleTrace
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role


def slot_setters(kind: type, names: str) -> list[Any]:
    """The slot descriptors' setters of ``names`` (all of ``kind``'s fields, in any order).

    Raises:
        RuntimeError: If ``names`` are not exactly ``kind``'s fields (at import).
    """
    wanted = names.split()
    if sorted(wanted) != sorted(f.name for f in fields(kind)):  # pragma: no cover - import guard
        raise RuntimeError(f"{kind.__name__}'s fields changed: update domain.slots")
    return [getattr(kind, name).__set__ for name in wanted]


new = object.__new__
"""``new(Agent)`` / ``new(Licence)``: an empty value for the setters to fill, every one of them."""
(
    set_agent_id,
    set_role,
    set_status,
    set_capacity,
    set_licences,
    set_territories,
    set_skills,
    set_languages,
    set_last_assigned_at,
    set_teams,
    set_seniority,
    set_attributes,
) = slot_setters(
    Agent,
    "agent_id role status capacity licences territories skills languages last_assigned_at "
    "teams seniority attributes",
)
"""Agent's slot setters, by name; an Agent built with every one is ``Agent(...)``'s value."""
set_type, set_jurisdiction, set_expires_on, set_multistate = slot_setters(
    Licence, "type jurisdiction expires_on multistate"
)
"""Licence's slot setters, by name."""


def new_agent(  # Agent's twelve fields, positional for speed
    agent_id: str,
    role: Role,
    status: AgentStatus,
    capacity: Capacity,
    licences: tuple[Licence, ...],
    territories: frozenset[str],
    skills: dict[str, int],
    languages: frozenset[str],
    last_assigned_at: datetime | None,
    teams: frozenset[str],
    seniority: int,
    attributes: dict[str, AttributeValue],
) -> Agent:
    """``Agent(...)`` of the same twelve values, without the frozen ``__init__``."""
    agent: Agent = new(Agent)
    set_agent_id(agent, agent_id)
    set_role(agent, role)
    set_status(agent, status)
    set_capacity(agent, capacity)
    set_licences(agent, licences)
    set_territories(agent, territories)
    set_skills(agent, skills)
    set_languages(agent, languages)
    set_last_assigned_at(agent, last_assigned_at)
    set_teams(agent, teams)
    set_seniority(agent, seniority)
    set_attributes(agent, attributes)
    return agent


_set_text, _set_value, _set_actual = slot_setters(ClauseTrace, "text value actual")
_set_rule_id, _set_description, _set_fired, _set_decided, _set_clauses = slot_setters(
    RuleTrace, "rule_id description fired decided clauses"
)


def new_clause_trace(text: str, value: bool, actual: str) -> ClauseTrace:
    """``ClauseTrace(text, value, actual)``, without the frozen ``__init__``."""
    clause: ClauseTrace = new(ClauseTrace)
    _set_text(clause, text)
    _set_value(clause, value)
    _set_actual(clause, actual)
    return clause


def new_rule_trace(  # RuleTrace's five fields, positional for speed
    rule_id: str,
    description: str,
    fired: bool,
    decided: bool,
    clauses: tuple[ClauseTrace, ...],
) -> RuleTrace:
    """``RuleTrace(rule_id, description, fired, decided, clauses)``, without its ``__init__``."""
    trace: RuleTrace = new(RuleTrace)
    _set_rule_id(trace, rule_id)
    _set_description(trace, description)
    _set_fired(trace, fired)
    _set_decided(trace, decided)
    _set_clauses(trace, clauses)
    return trace
