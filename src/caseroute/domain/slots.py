"""Agent, Licence and rule-trace values built without their frozen ``__init__``.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (~1.2-1.7 us
for Agent's 12); the slot descriptors' own setters take half that, once per agent of a cold
roster. This module fails at import (``check_slot_built``) if a type it builds changes its
fields or gains a ``__post_init__``, an ``__init__`` or ``__new__`` of its own, or a slot that is
no field (the setters would skip or miss it), so ``object.__new__`` plus every setter gives the
value its constructor gives
(``tests/wire/test_fast_known_agents.py`` and ``tests/domain/test_fast_dict_handover.py``
compare with the strict parsers'). Used by ``wire.fast`` (protobuf) and ``domain.fast_dict``
(dicts). ``Case`` (no ``__post_init__``), built the same way by ``wire.fast`` once per request
(``tests/wire/test_fast_agreement.py`` compares with the strict parser), and ``RuleTrace`` and
``ClauseTrace`` (none either), by ``engine.trace`` for every rule and clause of every
explanation rendered (``tests/engine/test_trace_render.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any

from caseroute.domain.case import (
    AttributeValue,
    Case,
    Channel,
    Intent,
    PreferredAgent,
    RequiredSkill,
    SentimentReading,
    SlaClock,
    Tier,
    Urgency,
)
from caseroute.domain.decision import ClauseTrace, RuleTrace
from caseroute.domain.roster import Agent, AgentStatus, Capacity, Licence, Role


def check_slot_built(kind: type, names: Sequence[str]) -> None:
    """Refuse a type whose value ``object.__new__`` plus ``names``' slot setters would not build.

    Such a value skips ``__init__``, ``__post_init__`` and ``__new__``, so each must add nothing
    to what the setters do: ``kind`` must be a dataclass whose fields are exactly ``names``,
    with the ``__init__`` ``@dataclass`` writes (it only sets the fields), no
    ``__post_init__`` (a check there would never run on gRPC input), no ``__new__`` of its own,
    and no slot that is not a field (it would stay unset).

    Args:
        kind: The type built through its slot setters.
        names: Its fields, as the builder sets them.

    Raises:
        RuntimeError: If any of that does not hold (at import), saying what to do.
    """
    name = kind.__name__
    todo = (
        f"update domain.slots: build {name} through its constructor (drop its new_* builder "
        "and slot_setters call), or move the check where the builders run it"
    )
    if not is_dataclass(kind):
        raise RuntimeError(f"{name} is not a dataclass; {todo}")
    field_names = sorted(f.name for f in fields(kind))
    if sorted(names) != field_names:
        raise RuntimeError(f"{name}'s fields changed: update domain.slots (its setters)")
    if hasattr(kind, "__post_init__"):
        raise RuntimeError(
            f"{name} defines __post_init__: values built by domain.slots' setters would skip it "
            f"(a check there would never run on gRPC input); {todo}"
        )
    code = getattr(kind.__init__, "__code__", None)
    if code is None or code.co_filename != "<string>":  # @dataclass writes it with exec
        raise RuntimeError(
            f"{name} defines its own __init__ (not the one @dataclass writes): values built by "
            f"domain.slots' setters would skip it; {todo}"
        )
    if kind.__new__ is not object.__new__:
        raise RuntimeError(
            f"{name} defines its own __new__: values built by domain.slots' setters skip it; {todo}"
        )
    slots = sorted(s for k in kind.__mro__ for s in getattr(k, "__slots__", ()))
    if slots != field_names:
        raise RuntimeError(
            f"{name}'s slots are not exactly its fields ({', '.join(slots)}): a slot the "
            f"setters do not set would stay unset; {todo}"
        )


def slot_setters(kind: type, names: str) -> list[Any]:
    """The slot descriptors' setters of ``names`` (all of ``kind``'s fields, in any order).

    Raises:
        RuntimeError: If ``kind`` cannot be built by them (at import; ``check_slot_built``).
    """
    wanted = names.split()
    check_slot_built(kind, wanted)
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


_CASE_SETTERS = slot_setters(
    Case,
    "case_id created_at channel intent urgency classification_confidence patient_location "
    "region tier required_skills preferred_language sentiment sla_clocks flags attributes "
    "waiting_since declined_agents preferred_agents",
)
(
    _set_case_id,
    _set_created_at,
    _set_channel,
    _set_intent,
    _set_urgency,
    _set_confidence,
    _set_location,
    _set_region,
    _set_tier,
    _set_skills,
    _set_language,
    _set_sentiment,
    _set_clocks,
    _set_flags,
    _set_case_attributes,
    _set_waiting_since,
    _set_declined,
    _set_preferred,
) = _CASE_SETTERS


def new_case(  # Case's eighteen fields, positional for speed
    case_id: str,
    created_at: datetime,
    channel: Channel,
    intent: Intent,
    urgency: Urgency,
    classification_confidence: float,
    patient_location: str | None,
    region: str | None,
    tier: Tier,
    required_skills: tuple[RequiredSkill, ...],
    preferred_language: str | None,
    sentiment: tuple[SentimentReading, ...],
    sla_clocks: tuple[SlaClock, ...],
    flags: frozenset[str],
    attributes: dict[str, AttributeValue],
    waiting_since: datetime | None,
    declined_agents: frozenset[str],
    preferred_agents: tuple[PreferredAgent, ...],
) -> Case:
    """``Case(...)`` of the same eighteen values, without the frozen ``__init__``."""
    case: Case = new(Case)
    _set_case_id(case, case_id)
    _set_created_at(case, created_at)
    _set_channel(case, channel)
    _set_intent(case, intent)
    _set_urgency(case, urgency)
    _set_confidence(case, classification_confidence)
    _set_location(case, patient_location)
    _set_region(case, region)
    _set_tier(case, tier)
    _set_skills(case, required_skills)
    _set_language(case, preferred_language)
    _set_sentiment(case, sentiment)
    _set_clocks(case, sla_clocks)
    _set_flags(case, flags)
    _set_case_attributes(case, attributes)
    _set_waiting_since(case, waiting_since)
    _set_declined(case, declined_agents)
    _set_preferred(case, preferred_agents)
    return case
