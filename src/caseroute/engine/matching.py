"""Per-agent eligibility: every check each agent fails, with expected vs actual.

Hard constraints live here and are applied whatever a rule asks: an agent must hold a licence
of the intent's constrained types valid at the patient location, and a case whose consent flag
is set can be assigned to nobody.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

from caseroute.domain.case import Case, RequiredSkill
from caseroute.domain.decision import AGENT_CHECKS, AgentVerdict, CheckFailure
from caseroute.domain.jurisdiction import SUBDIVISION_EXAMPLE, licensing_code, needs_subdivision
from caseroute.domain.roster import Agent, AgentStatus, Role, Roster
from caseroute.domain.territory import RegionAreas, areas_of
from caseroute.engine.licensing import CompactView, licence_valid_at
from caseroute.engine.local_days import LocalDays, local_days
from caseroute.engine.roster_index import RosterIndex, bits, index_for, language_key
from caseroute.rules.model import Compact, CompiledRuleset, Register, Requirements

T = TypeVar("T")

CHECK_ORDER = AGENT_CHECKS
"""The checks ``check_agent`` applies, in its order (the names are domain data: golden files
are checked against them by the rule language, which cannot import the engine)."""


@dataclass(frozen=True, slots=True)
class Need:
    """What an agent must satisfy for this case under one action, fully resolved."""

    statuses: frozenset[AgentStatus]
    roles: frozenset[Role] | None
    licence_types: tuple[str, ...] | None
    location: str | None
    region: str | None
    skills: tuple[RequiredSkill, ...]
    language: str | None
    consent_flag: str | None
    compacts: CompactView
    day: LocalDays
    declined: frozenset[str] = frozenset()
    areas: RegionAreas | None = None
    """``region`` and every area it lies within (``None`` exactly when ``region`` is)."""
    declined_folded: frozenset[str] = field(init=False, repr=False, compare=False)
    """``declined``, casefolded: what agent ids are compared with (derived, so not compared)."""

    def __post_init__(self) -> None:
        # Declined ids match agent ids whatever their letter case (review R33a L4): a caller
        # sending "NURSE-1" for roster agent "nurse-1" must not have them offered it again.
        folded = frozenset(d.casefold() for d in self.declined) if self.declined else frozenset()
        object.__setattr__(self, "declined_folded", folded)

    def describe(self) -> tuple[str, ...]:
        """Each check that applies, in words, for the explanation."""
        out = []
        if self.consent_flag:
            out.append(f"consent: case is flagged {self.consent_flag}; no agent may take it")
        if self.declined:
            out.append(f"declined: not {', '.join(sorted(self.declined))} (declined the case)")
        out.append("status: " + " or ".join(sorted(s.value for s in self.statuses)))
        if self.roles is not None:
            out.append("role: " + " or ".join(sorted(r.value for r in self.roles)))
        if self.licence_types is not None:
            out.append(
                f"licence: {' or '.join(self.licence_types) or 'none acceptable'} valid "
                f"in {self.location} on {self.day.text}"
            )
        if self.areas is not None:
            out.append(f"territory: covers {self.areas.describe()}")
        if self.skills:
            out.append("skills: " + ", ".join(f"{s.name} >= {s.min_level}" for s in self.skills))
        if self.language is not None:
            out.append(f"language: {self.language}")
        out.append("capacity: active < max")
        return tuple(out)


@lru_cache(maxsize=256)
def describe_need(need: Need) -> tuple[str, ...]:
    """``need.describe()``, remembered by value (cases of one kind resolve equal needs)."""
    return need.describe()


_COMPACT_VIEWS: dict[
    tuple[int, int, LocalDays], tuple[tuple[Compact, ...], tuple[Register, ...], CompactView]
] = {}


def _compacts_on(
    compacts: tuple[Compact, ...], day: LocalDays, registers: tuple[Register, ...] = ()
) -> CompactView:
    """``CompactView.on``, found by the ruleset's compacts object instead of its value.

    ``CompactView.on`` is memoised by value, and hashing the compacts (every member with its
    dates) cost ~5 us per call, twice per adaptive decision. Keyed by identity, the entry keeps
    the tuple it was built from (so its id is never reused while the entry lives) and is
    checked against it.
    """
    key = (id(compacts), id(registers), day)
    found = _COMPACT_VIEWS.get(key)
    if found is not None and found[0] is compacts and found[1] is registers:
        return found[2]
    view = CompactView.on(compacts, day, registers)
    if len(_COMPACT_VIEWS) >= 64:
        _COMPACT_VIEWS.clear()
    _COMPACT_VIEWS[key] = (compacts, registers, view)
    return view


_FROZEN: dict[int, tuple[tuple[object, ...], frozenset[Any]]] = {}


def _frozen(values: tuple[T, ...]) -> frozenset[T]:
    """``frozenset(values)`` for a ruleset's tuple (statuses, an action's roles), built once.

    Keyed by identity like ``_compacts_on``: the entry keeps the tuple it was built from (so
    its id is never reused while the entry lives) and is checked against it; bounded.
    """
    found = _FROZEN.get(id(values))
    if found is not None and found[0] is values:
        return found[1]
    frozen = frozenset(values)
    if len(_FROZEN) >= 64:
        _FROZEN.clear()
    _FROZEN[id(values)] = (values, frozen)
    return frozen


class MissingDataError(Exception):
    """The action needs case data that is missing or too coarse (an EXCEPTION decision)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _merge_skills(
    first: tuple[RequiredSkill, ...], second: tuple[RequiredSkill, ...]
) -> tuple[RequiredSkill, ...]:
    if not second and (not first or (len(first) == 1 and first[0].min_level >= 0)):
        return first  # what the merge below gives: one skill at its own level, or none
    levels: dict[str, int] = {}
    for skill in (*first, *second):
        levels[skill.name] = max(levels.get(skill.name, 0), skill.min_level)
    return tuple(RequiredSkill(name, level) for name, level in levels.items())


def build_need(case: Case, req: Requirements, ruleset: CompiledRuleset, now: datetime) -> Need:
    """Resolve an action's requirements and the hard constraints against one case.

    Args:
        case: The case.
        req: The action's requirements.
        ruleset: For hard constraints, compacts and statuses.
        now: Decision instant (licence expiry and compact membership are dated).

    Returns:
        The resolved need.

    Raises:
        MissingDataError: If a licence is needed and the patient location is missing, too
            coarse (a whole country whose states or provinces license) or a code no licence
            names (``PR`` for ``US-PR``, ``UK`` for ``GB``), or a territory is needed and the
            case region is missing.
    """
    licence: tuple[str, ...] | None = req.licence_types
    floor = ruleset.constraints.licence_by_intent.get(case.intent)
    if floor is not None:
        # Hard constraint: a rule may narrow the licence types, never widen or drop them.
        licence = floor if licence is None else tuple(t for t in licence if t in floor)
    if licence is not None and case.patient_location is None:
        raise MissingDataError(
            "missing_patient_location",
            f"a {' or '.join(licence) or 'licensed'} agent is required but case."
            "patient_location is missing, so licensure cannot be checked",
        )
    if licence is not None and needs_subdivision(where := case.patient_location or ""):
        # ``US`` alone names no licensing board: every agent failed the licence check and the
        # case queued for nobody, with nothing telling the caller what to fix (review L5).
        raise MissingDataError(
            "patient_location_too_coarse",
            f"case.patient_location is {where}, a whole country, and {where} licenses by "
            f"state or province, so the licence this case needs ({' or '.join(licence) or 'any'})"
            " cannot be checked; send the patient's state or province at the time of service "
            f"(e.g. {SUBDIVISION_EXAMPLE[where]})",
        )
    if licence is not None and (named := licensing_code(case.patient_location or "")):
        # ``PR`` is Puerto Rico, but its licences are ``US-PR``: no licence names ``PR``, and
        # the case queued for nobody, with nothing telling the caller what to fix.
        raise MissingDataError(
            "patient_location_not_licensing_code",
            f"case.patient_location is {case.patient_location}, which licences name as {named}, "
            f"so the licence this case needs ({' or '.join(licence) or 'any'}) cannot be "
            f"checked against it; send {named}",
        )
    if req.territory and case.region is None:
        raise MissingDataError(
            "missing_region", "the action requires territory coverage but case.region is missing"
        )
    consent = ruleset.constraints.consent_flag
    # The patient's local dates: licences and compacts go by them (engine/local_days.py).
    day = local_days(case.patient_location, now)
    return Need(
        statuses=_frozen(ruleset.statuses),
        roles=_frozen(req.roles) if req.roles is not None else None,
        licence_types=licence,
        location=case.patient_location,
        region=case.region if req.territory else None,
        areas=(
            areas_of(case.region, ruleset.areas)
            if req.territory and case.region is not None
            else None
        ),
        skills=_merge_skills(case.required_skills if req.case_skills else (), req.skills),
        language=case.preferred_language if req.language else None,
        consent_flag=consent if consent is not None and consent in case.flags else None,
        compacts=_compacts_on(ruleset.compacts, day, ruleset.registers),
        day=day,
        declined=case.declined_agents,
    )


def check_agent(need: Need, agent: Agent) -> list[CheckFailure]:
    """Every check one agent fails (empty: eligible).

    Args:
        need: Resolved requirements.
        agent: The agent.

    Returns:
        Failures in ``CHECK_ORDER``.
    """
    failures: list[CheckFailure] = []
    if need.consent_flag is not None:
        failures.append(
            CheckFailure(
                "consent", "a case with consent recorded", f"case flagged {need.consent_flag}"
            )
        )
    if need.declined and agent.agent_id.casefold() in need.declined_folded:
        failures.append(
            CheckFailure("declined", "an agent who has not declined the case", "declined it")
        )
    if agent.status not in need.statuses:
        failures.append(
            CheckFailure("status", " or ".join(sorted(need.statuses)), agent.status.value)
        )
    if need.roles is not None and agent.role not in need.roles:
        failures.append(CheckFailure("role", " or ".join(sorted(need.roles)), agent.role.value))
    if need.licence_types is not None:
        failure = _licence_failure(need, agent)
        if failure is not None:
            failures.append(failure)
    if (
        need.region is not None
        and need.areas is not None
        and need.areas.codes.isdisjoint(agent.territories)
    ):
        failures.append(
            CheckFailure(
                "territory",
                f"territory covering {need.region}",
                ", ".join(sorted(agent.territories)) or "no territories",
            )
        )
    missing = [s for s in need.skills if agent.skills.get(s.name, -1) < s.min_level]
    if missing:
        failures.append(
            CheckFailure(
                "skills",
                ", ".join(f"{s.name} >= {s.min_level}" for s in missing),
                ", ".join(
                    f"{s.name} {agent.skills[s.name]}" if s.name in agent.skills else f"no {s.name}"
                    for s in missing
                ),
            )
        )
    if need.language is not None:
        wanted = language_key(need.language)
        if not any(language_key(lang) == wanted for lang in agent.languages):
            failures.append(
                CheckFailure(
                    "language", need.language, ", ".join(sorted(agent.languages)) or "none listed"
                )
            )
    if agent.capacity.active >= agent.capacity.max:
        failures.append(
            CheckFailure(
                "capacity",
                "active < max",
                f"{agent.capacity.active} active of {agent.capacity.max}",
            )
        )
    return failures


def need_at(need: Need, at: datetime) -> Need:
    """``need`` with its licence dates (local days, compact membership) taken at ``at``.

    Every other check reads the roster and the case alone, so this is the need the same
    requirements resolve to at ``at``. A view built by hand without dated compacts keeps its
    members; the ruleset's registers are kept either way.
    """
    day = local_days(need.location, at)
    if day == need.day:
        return need
    dated = need.compacts.dated
    # The registers come along: they are not dated, and without them a country-wide licence
    # would cover the parts its register leaves out at every instant but ``now``.
    compacts = _compacts_on(dated, day, need.compacts.registers) if dated else need.compacts
    return replace(need, day=day, compacts=compacts)


def licence_failure(need: Need, agent: Agent) -> CheckFailure | None:
    """The licence check ``agent`` fails under ``need`` (``None``: passes or none applies)."""
    if need.licence_types is None:
        return None
    return _licence_failure(need, agent)


def _licence_failure(need: Need, agent: Agent) -> CheckFailure | None:
    # build_need guarantees a location whenever licence types apply.
    assert need.licence_types is not None  # noqa: S101
    assert need.location is not None  # noqa: S101
    notes = []
    for licence in agent.licences:
        if licence.type not in need.licence_types:
            notes.append(f"{licence.type} {licence.jurisdiction} (wrong type)")
            continue
        valid, note = licence_valid_at(licence, need.location, need.day, need.compacts)
        if valid:
            return None
        notes.append(note)
    expected = f"{' or '.join(need.licence_types) or 'an allowed type'} valid in {need.location}"
    return CheckFailure("licence", expected, ", ".join(notes) or "no licences")


@dataclass(frozen=True, slots=True)
class MatchResult:
    """Outcome of matching a roster against a need."""

    eligible: tuple[Agent, ...]
    verdicts: tuple[AgentVerdict, ...]
    exclusion_counts: tuple[tuple[str, int], ...]
    failed_masks: tuple[tuple[str, str], ...] = ()


def check_masks(need: Need, index: RosterIndex) -> dict[str, int]:
    """For each check that applies, the mask of agents that pass it (same rules as check_agent).

    Remembered on the index by need (the masks read nothing else); each caller gets a copy.

    Args:
        need: Resolved requirements.
        index: The roster's index.

    Returns:
        Check name -> mask of passing agents.
    """
    key = ("masks", need)
    found = index.recall(key)
    if not isinstance(found, dict):
        found = _resolve_masks(need, index)
        index.remember(key, found)
    return dict(found)


def _resolve_masks(need: Need, index: RosterIndex) -> dict[str, int]:
    masks = {"consent": 0} if need.consent_flag is not None else {}
    if need.declined:
        folded = folded_ids(index)
        declined = 0
        for agent_id in need.declined_folded:
            declined |= folded.get(agent_id, 0)
        masks["declined"] = index.everyone & ~declined
    masks["status"] = index.status_mask(need.statuses)
    if need.roles is not None:
        masks["role"] = index.role_mask(need.roles)
    if need.licence_types is not None:
        assert need.location is not None  # noqa: S101 - build_need guarantees it
        masks["licence"] = index.licence_mask(
            need.licence_types, need.location, need.day, need.compacts
        )
    if need.region is not None:
        masks["territory"] = index.territory_mask(need.region, need.areas)
    if need.skills:
        skilled = index.everyone
        for required in need.skills:
            skilled &= index.skill_mask(required.name, required.min_level)
        masks["skills"] = skilled
    if need.language is not None:
        masks["language"] = index.language_mask(need.language)
    masks["capacity"] = index.has_capacity
    return masks


def folded_ids(index: RosterIndex) -> dict[str, int]:
    """Casefolded agent id -> mask of the agents with it, built once per index (never mutated).

    Declined ids are compared with agent ids case-insensitively (``check_agent`` casefolds
    too: the two must agree).
    """
    found = index.recall("folded-ids")
    if isinstance(found, dict):
        return found
    folded: dict[str, int] = {}
    for i, agent in enumerate(index.agents):
        key = agent.agent_id.casefold()
        folded[key] = folded.get(key, 0) | 1 << i
    index.remember("folded-ids", folded)
    return folded


def unmatched_declined(need: Need, index: RosterIndex) -> tuple[str, ...]:
    """Declined ids (as sent, sorted) that match no agent on the roster, in any letter case.

    Named in the explanation so operations can spot a typo (agent ids are not PHI).
    """
    if not need.declined:
        return ()
    folded = folded_ids(index)
    return tuple(sorted(d for d in need.declined if d.casefold() not in folded))


def match_agents(need: Need, roster: Roster, *, detail: bool = True) -> MatchResult:
    """Check every agent against a need, by set algebra over the roster's index.

    Args:
        need: Resolved requirements.
        roster: The roster.
        detail: Keep a verdict per agent, with every failed check in words (built only for
            excluded agents, by ``check_agent``); off: counts only.

    Returns:
        Eligible agents (roster order), verdicts (when detail) or failed-check masks (when
        not), and failed-check counts. Without detail (SUMMARY, the served default) the
        result is remembered on the roster's index by need: a later equal need gets the same
        (immutable) result. With detail it is not: a verdict per agent of a large roster
        would hold megabytes per need.
    """
    index = index_for(roster)
    if detail:
        return _match(need, index, detail=True)
    key = ("match", need)
    found = index.recall(key)
    if isinstance(found, MatchResult):
        return found
    result = _match(need, index, detail=False)
    index.remember(key, result)
    return result


def _match(need: Need, index: RosterIndex, *, detail: bool) -> MatchResult:
    masks = check_masks(need, index)
    eligible_mask = index.everyone
    for mask in masks.values():
        eligible_mask &= mask
    total = len(index.agents)
    counts = tuple(
        (check, total - (masks[check] & index.everyone).bit_count())
        for check in CHECK_ORDER
        if check in masks
    )
    verdicts: tuple[AgentVerdict, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    if not detail:
        failed = tuple(
            (check, format(index.everyone & ~masks[check], "x"))
            for check in CHECK_ORDER
            if check in masks and index.everyone & ~masks[check]
        )
    else:
        verdicts = tuple(
            AgentVerdict(agent.agent_id, eligible=True, failures=())
            if eligible_mask >> i & 1
            else AgentVerdict(
                agent.agent_id, eligible=False, failures=tuple(check_agent(need, agent))
            )
            for i, agent in enumerate(index.agents)
        )
    return MatchResult(
        tuple(index.agents[i] for i in bits(eligible_mask)),
        verdicts,
        tuple((check, n) for check, n in counts if n),
        failed,
    )
