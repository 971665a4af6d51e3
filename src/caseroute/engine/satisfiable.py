"""Lint a compiled ruleset against a real roster: requirements no agent on it can ever satisfy.

Only what the ruleset states literally is checked, per rule that can assign an agent (``route``,
or ``escalate`` with ``assign``):

* ``roster.unsatisfiable_licence``: the licence types the rule accepts (its ``licence:``,
  narrowed by ``constraints.licence`` for each intent its condition pins) that nobody holds
  unexpired on the check day;
* ``roster.unsatisfiable_jurisdiction``: a patient location the condition pins
  (``case.patient_location == 'US-NM'`` / ``in [...]``) where no such licence is valid, directly
  or via a compact, with the engine's own ``licence_valid_at``;
* ``roster.unsatisfiable_skill``: a ``skills:`` entry nobody reaches;
* ``roster.unsatisfiable_language`` / ``roster.unsatisfiable_territory``: a preferred language
  or region the condition pins, with ``language`` / ``territory`` on, that nobody speaks / covers;
  also an area the condition requires of ``case.region_areas`` (``'GB-ENG' in
  case.region_areas``) that no agent's territory covers, lies within, or lies around;
* ``roster.unsatisfiable_role``: ``roles:`` nobody on the roster has;
* ``roster.unsatisfiable_combination``: each of the above is met by someone, but no single
  agent meets them all together (an RN here, triage level 3 there).

Soft requirements are judged as the rule's ladder leaves them in the end: one the ladder
relaxes for every urgency the condition allows (or that is only `prefer:`-red) is not a finding,
since the case is assigned once it relaxes; one some urgency never relaxes still is.

Status and capacity are not checked (they change by the minute), and neither is anything that
comes from the case alone (its required skills, an unpinned location, region or language).
Findings are warnings: the roster is a snapshot, and tomorrow's may hold the missing nurse.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from caseroute.domain.case import Intent, Urgency
from caseroute.domain.errors import Problem, RulesetError, Severity
from caseroute.domain.roster import Agent, Roster
from caseroute.domain.territory import region_areas
from caseroute.engine.licensing import CompactView, licence_valid_at
from caseroute.engine.local_days import LocalDays
from caseroute.engine.relaxation import relaxed_requirements
from caseroute.engine.roster_index import language_key
from caseroute.rules.ir import Leaf, pinned_values, required_members
from caseroute.rules.model import (
    CompiledRuleset,
    EscalateAction,
    Requirements,
    RouteAction,
    Rule,
)
from caseroute.rules.source import Node, parse_yaml

__all__ = ["UNSATISFIABLE_CODES", "pinned_values", "unsatisfiable_requirements"]

UNSATISFIABLE_CODES = (
    "roster.unsatisfiable_licence",
    "roster.unsatisfiable_jurisdiction",
    "roster.unsatisfiable_skill",
    "roster.unsatisfiable_language",
    "roster.unsatisfiable_territory",
    "roster.unsatisfiable_role",
    "roster.unsatisfiable_combination",
)


@dataclass(frozen=True, slots=True)
class _Where:
    """Positions in the source file of what one rule requires (line 0: not found)."""

    rule: tuple[int, int]
    when: tuple[int, int]
    requirement: dict[str, Node]


def _child(node: Node | None, key: str) -> Node | None:
    if node is None or not node.is_mapping:
        return None
    child = node.value.get(key)
    return child if isinstance(child, Node) else None


class _Locator:
    """Finds where a requirement is written, by re-reading the ruleset's own source text."""

    def __init__(self, ruleset: CompiledRuleset) -> None:
        self.root: Node | None = None
        try:
            self.root = parse_yaml(ruleset.source_text, ruleset.path).root
        except RulesetError:  # compiled from this text, so it parses; stay safe regardless
            self.root = None
        self.rules: dict[str, Node] = {}
        rules = _child(self.root, "rules")
        for item in rules.value if rules is not None and rules.is_sequence else []:
            rid = _child(item, "id")
            if rid is not None and isinstance(rid.value, str):
                self.rules.setdefault(rid.value, item)

    def rule(self, rule: Rule) -> _Where:
        node = self.rules.get(rule.rule_id)
        then = _child(node, "then")
        req = _child(then, "route") or _child(_child(then, "escalate"), "assign")
        when = _child(node, "when")
        return _Where(
            (rule.line, 0),
            (when.line, 0) if when is not None else (rule.line, 0),
            dict(req.value) if req is not None and req.is_mapping else {},
        )

    def floor(self, intent: Intent) -> tuple[int, int] | None:
        node = _child(_child(_child(self.root, "constraints"), "licence"), intent.value)
        return (node.line, node.column) if node is not None else None


def _position(node: Node | None, fallback: tuple[int, int]) -> tuple[int, int]:
    return (node.line, node.column) if node is not None else fallback


def _always_relaxed(rule: Rule, req: Requirements, leaves: dict[str, Leaf]) -> tuple[str, ...]:
    """Soft requirements the rule's ladder relaxes, in the end, for every urgency it sees."""
    if req.ladder is None:
        return ()
    pinned = pinned_values(rule.when, leaves, "case.urgency")
    urgencies = [u for u in Urgency if pinned is None or u.value in pinned]
    reached = [
        {n for step in req.ladder.steps if u in step.after for n in step.relaxes} for u in urgencies
    ]
    always = set.intersection(*reached) if reached else set()
    return tuple(n for n in req.soft if n in always)


def _requirements(rule: Rule) -> Requirements | None:
    action = rule.action
    if isinstance(action, RouteAction):
        return action.requirements
    if isinstance(action, EscalateAction):
        return action.assign
    return None


class _Checker:
    """Collects the findings of one ruleset against one roster on one day."""

    def __init__(
        self, ruleset: CompiledRuleset, roster: Roster, roster_name: str, day: date
    ) -> None:
        self.ruleset = ruleset
        self.roster = roster
        self.name = roster_name
        self.day = day
        # "As of" one day, the same everywhere: the roster check has no instant.
        self.days = LocalDays.single(day)
        self.compacts = CompactView.on(ruleset.compacts, self.days, ruleset.registers)
        self.locate = _Locator(ruleset)
        self.findings: list[Problem] = []
        self._around: dict[str, frozenset[str]] = {}

    def add(self, code: str, rule: Rule, at: tuple[int, int], message: str) -> None:
        self.findings.append(
            Problem(code, message, self.ruleset.path, at[0], at[1], rule.rule_id, Severity.WARNING)
        )

    def check(self, rule: Rule) -> None:
        req = _requirements(rule)
        if req is None:
            return
        # A soft requirement nobody meets is not unsatisfiable if the ladder relaxes it for
        # every urgency the rule sees: judge what the rule requires once fully relaxed.
        req = relaxed_requirements(req, _always_relaxed(rule, req, self.ruleset.leaves))
        where = self.locate.rule(rule)
        leaves = self.ruleset.leaves
        before = len(self.findings)
        intents = pinned_values(rule.when, leaves, "case.intent")
        self._licences(rule, req, where, intents)
        self._roles(rule, req, where)
        self._skills(rule, req, where)
        languages = pinned_values(rule.when, leaves, "case.preferred_language") or frozenset()
        regions = pinned_values(rule.when, leaves, "case.region") or frozenset()
        areas = required_members(rule.when, leaves, "case.region_areas") or frozenset()
        if req.language:
            for language in sorted(languages):
                self._language(rule, language, where)
        if req.territory:
            for region in sorted(regions):
                self._territory(rule, region, where)
            for area in sorted(areas):
                self._area(rule, area, where)
        if len(self.findings) == before:  # each is met by someone; is any agent all of them?
            self._together(
                rule,
                req,
                where,
                intents,
                languages if req.language else frozenset(),
                regions if req.territory else frozenset(),
                areas if req.territory else frozenset(),
            )

    def _together(
        self,
        rule: Rule,
        req: Requirements,
        where: _Where,
        intents: frozenset[str] | None,
        languages: frozenset[str],
        regions: frozenset[str],
        areas: frozenset[str],
    ) -> None:
        """One finding per licence set and pinned location that no single agent fully meets.

        A pinned language or region counts as met when the agent speaks / covers any of its
        values: weaker than the case's one value, so every finding is real (none invented);
        so do required areas (an agent serving any one of them).
        """
        locations = sorted(
            pinned_values(rule.when, self.ruleset.leaves, "case.patient_location") or ()
        )
        wanted_languages = {language_key(lang) for lang in languages}
        accepted: list[tuple[str, ...] | None] = [
            t for t, _, _ in self._accepted(req, intents, where)
        ]
        for types in accepted or [None]:
            for location in locations if types is not None and locations else [None]:
                if any(
                    self._meets(agent, req, types, location, wanted_languages, regions, areas)
                    for agent in self.roster.agents
                ):
                    continue
                parts = []
                if types is not None:
                    valid = f"valid in {location}" if location is not None else "unexpired"
                    parts.append(f"licence {' or '.join(types)} {valid}")
                parts += [f"{s.name} >= {s.min_level}" for s in req.skills]
                if req.roles is not None:
                    parts.append("role " + " or ".join(sorted(r.value for r in req.roles)))
                if languages:
                    parts.append("speaks " + " or ".join(sorted(languages)))
                if regions:
                    parts.append("territory covering " + " or ".join(sorted(regions)))
                if areas:
                    within = " or ".join(sorted(areas))
                    parts.append(f"territory covering {within} or an area within it")
                if len(parts) < 2:  # one requirement: its own check already passed
                    continue
                self.add(
                    "roster.unsatisfiable_combination",
                    rule,
                    where.rule,
                    f"no single agent on {self.name} meets all that rule `{rule.rule_id}` "
                    f"requires together ({'; '.join(parts)}): each is met by someone, never "
                    "all by one; add such an agent, or relax a requirement",
                )

    def _meets(
        self,
        agent: Agent,
        req: Requirements,
        types: tuple[str, ...] | None,
        location: str | None,
        languages: set[str],
        regions: frozenset[str],
        areas: frozenset[str],
    ) -> bool:
        """Whether one agent meets every statically known requirement (the same predicates)."""
        if types is not None and not any(
            lic.type in types
            and (
                licence_valid_at(lic, location, self.days, self.compacts)[0]
                if location is not None
                else lic.expires_on >= self.day
            )
            for lic in agent.licences
        ):
            return False
        if any(agent.skills.get(s.name, -1) < s.min_level for s in req.skills):
            return False
        if req.roles is not None and agent.role not in req.roles:
            return False
        if languages and not any(language_key(x) in languages for x in agent.languages):
            return False
        if areas and not any(self._serves_within(area, agent) for area in areas):
            return False
        return not regions or any(
            not self._covering(region).isdisjoint(agent.territories) for region in regions
        )

    def _accepted(
        self, req: Requirements, intents: frozenset[str] | None, where: _Where
    ) -> Iterator[tuple[tuple[str, ...], tuple[int, int], str]]:
        """Each distinct set of licence types the rule accepts, where it is written, and why."""
        explicit = req.licence_types
        at_explicit = _position(where.requirement.get("licence"), where.rule)
        if intents is None:  # intent open: only what the action itself names is known
            if explicit is not None:
                yield explicit, at_explicit, "its licence:"
            return
        seen: set[tuple[str, ...]] = set()
        for value in sorted(intents):
            intent = Intent(value)
            floor = self.ruleset.constraints.licence_by_intent.get(intent)
            if floor is None:
                types, at, why = explicit, at_explicit, "its licence:"
            elif explicit is None:
                at = self.locate.floor(intent) or where.rule
                types, why = floor, f"constraints.licence.{value}"
            else:
                types = tuple(t for t in explicit if t in floor)
                at, why = at_explicit, f"its licence: within constraints.licence.{value}"
            if types is not None and types not in seen:
                seen.add(types)
                yield types, at, why

    def _licences(
        self, rule: Rule, req: Requirements, where: _Where, intents: frozenset[str] | None
    ) -> None:
        locations = pinned_values(rule.when, self.ruleset.leaves, "case.patient_location")
        for types, at, why in self._accepted(req, intents, where):
            if not types:
                self.add(
                    "roster.unsatisfiable_licence",
                    rule,
                    at,
                    f"rule `{rule.rule_id}` accepts no licence type at all ({why} shares none "
                    "with the hard constraint), so it can never assign anyone; list a type "
                    "the constraint allows",
                )
                continue
            wanted = " or ".join(types)
            held = [
                lic
                for agent in self.roster.agents
                for lic in agent.licences
                if lic.type in types and lic.expires_on >= self.day
            ]
            if not held:
                self.add(
                    "roster.unsatisfiable_licence",
                    rule,
                    at,
                    f"no agent on {self.name} holds an unexpired {wanted} licence on "
                    f"{self.day.isoformat()} (required by {why}), so rule `{rule.rule_id}` "
                    "can never assign anyone; add one, or check the licence type",
                )
                continue
            for location in sorted(locations or ()):
                self._jurisdiction(rule, types, location, where)

    def _jurisdiction(
        self, rule: Rule, types: tuple[str, ...], location: str, where: _Where
    ) -> None:
        for agent in self.roster.agents:
            for lic in agent.licences:
                if (
                    lic.type in types
                    and licence_valid_at(lic, location, self.days, self.compacts)[0]
                ):
                    return
        via = [
            name
            for name, compact_types, members in self.compacts.entries
            if location in members and compact_types & set(types)
        ]
        how = f"directly or via the {' or '.join(via)}" if via else "directly; no compact applies"
        self.add(
            "roster.unsatisfiable_jurisdiction",
            rule,
            where.when,
            f"no agent on {self.name} has a licence of type {' or '.join(types)} valid in "
            f"{location} on {self.day.isoformat()} ({how}); add one, or check the jurisdiction",
        )

    def _roles(self, rule: Rule, req: Requirements, where: _Where) -> None:
        if req.roles is None:
            return
        if not any(agent.role in req.roles for agent in self.roster.agents):
            wanted = " or ".join(sorted(r.value for r in req.roles)) or "(none listed)"
            self.add(
                "roster.unsatisfiable_role",
                rule,
                _position(where.requirement.get("roles"), where.rule),
                f"no agent on {self.name} has role {wanted}; add one, or widen `roles:`",
            )

    def _skills(self, rule: Rule, req: Requirements, where: _Where) -> None:
        items = where.requirement.get("skills")
        nodes = items.value if items is not None and items.is_sequence else []
        for i, required in enumerate(req.skills):
            levels = [
                (agent.skills[required.name], agent.agent_id)
                for agent in self.roster.agents
                if required.name in agent.skills
            ]
            if any(level >= required.min_level for level, _ in levels):
                continue
            if levels:
                top, who = min(levels, key=lambda pair: (-pair[0], pair[1]))
                have = f"the highest is {top} ({who}); add one, or lower min_level"
            else:
                have = "nobody has it at all; add one, or check the skill name"
            self.add(
                "roster.unsatisfiable_skill",
                rule,
                _position(nodes[i] if i < len(nodes) else items, where.rule),
                f"no agent on {self.name} has {required.name} at level {required.min_level} "
                f"or above: {have}",
            )

    def _language(self, rule: Rule, language: str, where: _Where) -> None:
        wanted = language_key(language)
        if any(
            language_key(spoken) == wanted
            for agent in self.roster.agents
            for spoken in agent.languages
        ):
            return
        self.add(
            "roster.unsatisfiable_language",
            rule,
            where.when,
            f"no agent on {self.name} speaks {language}, which the condition requires; add "
            "one, or set `language: false` on the action",
        )

    def _covering(self, region: str) -> frozenset[str]:
        """The territories covering ``region``: it and its areas (the ruleset's too)."""
        around = self._around.get(region)
        if around is None:  # asked once per agent territory and rule: work each out once
            around = self._around[region] = region_areas(region, self.ruleset.areas).codes
        return around

    def _serves_within(self, area: str, agent: Agent) -> bool:
        """Whether ``agent`` can take some case whose region lies within ``area`` (or is it).

        A case meets ``'A' in case.region_areas`` when its region is A or lies within A; an
        agent covers it when a territory is the region or an area around it. So the agent
        serves some such case exactly when a territory covers A (a case in A) or lies within
        A (a case in that territory). The areas around a region form one chain (``areas:``
        may only refine the facts), so no third way exists and no finding is invented.
        """
        around = self._covering(area)
        return any(t in around or area in self._covering(t) for t in agent.territories)

    def _area(self, rule: Rule, area: str, where: _Where) -> None:
        if any(self._serves_within(area, agent) for agent in self.roster.agents):
            return
        self.add(
            "roster.unsatisfiable_territory",
            rule,
            where.when,
            f"no agent on {self.name} has a territory covering {area} or an area within it, "
            "which the condition requires of case.region_areas; add one, or set "
            "`territory: false` on the action",
        )

    def _territory(self, rule: Rule, region: str, where: _Where) -> None:
        covering = self._covering(region)
        if any(not covering.isdisjoint(agent.territories) for agent in self.roster.agents):
            return
        self.add(
            "roster.unsatisfiable_territory",
            rule,
            where.when,
            f"no agent on {self.name} has a territory covering {region}, which the condition "
            "requires; add one, or set `territory: false` on the action",
        )


def unsatisfiable_requirements(
    ruleset: CompiledRuleset, roster: Roster, roster_name: str, day: date
) -> list[Problem]:
    """Every requirement of the ruleset that no agent on the roster can satisfy.

    Args:
        ruleset: A compiled ruleset (its source text gives each finding's ``file:line``).
        roster: The roster snapshot to check against.
        roster_name: How messages name the roster (e.g. its file name).
        day: The day licence expiry and compact membership are judged on.

    Returns:
        Warnings (codes in ``UNSATISFIABLE_CODES``), in rule order.
    """
    checker = _Checker(ruleset, roster, roster_name, day)
    for rule in ruleset.rules:
        checker.check(rule)
    return checker.findings
