"""Continuity of care: preferred agents rank first among the eligible; preference never admits.

A preferred agent is considered only when eligible under every requirement in force (licence,
consent, territory, ... exactly as for anyone else). When none is eligible but one fails only
on presence or capacity (``unavailable``), a route may hold the case for them until the wait
anchor plus the ruleset's hold for the case's urgency (zero for urgent and critical in the
reference ruleset); after that the best other agent is chosen. Every preferred agent the case
named gets a status and a reason in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from caseroute.domain.case import Case
from caseroute.domain.decision import (
    CheckFailure,
    ContinuityOutcome,
    ContinuityTrace,
    PreferredAgentTrace,
)
from caseroute.domain.roster import Agent
from caseroute.engine.licence_dates import licence_changes_at
from caseroute.engine.matching import Need, check_agent, licence_failure, need_at
from caseroute.engine.relaxation import clock_text, shift
from caseroute.engine.roster_index import RosterIndex
from caseroute.rules.model import ContinuityPolicy

TRANSIENT_CHECKS = frozenset({"status", "capacity"})
"""Failures that may clear by themselves while a case waits (an agent frees up)."""


@dataclass(frozen=True, slots=True)
class ContinuityView:
    """Preferred agents sorted out before ranking.

    Attributes:
        reasons: Agent id -> continuity reason, for eligible preferred agents (they rank first).
        unavailable: Preferred agents that fail only on presence or capacity.
        traces: Per preferred agent: (agent id, reason, last contact, status, detail), status
            still provisional for eligible ones (ranking settles chosen / ranked lower).
        hold_minutes: Hold for this case's urgency.
        hold_until: Anchor plus hold (``None`` when the hold is zero, or would end after the
            end of 9999-12-31 UTC, where the calendar ends: ``relaxation.shift``).
        window_ends: Per eligible or unavailable preferred agent with a last contact: the
            instant that contact leaves the continuity window (the preference lapses).
        licence_ends: Per unavailable preferred agent whose licence here lapses
            by a date (its expiry, or a compact membership ending): that instant, and the
            licence check's words then.
    """

    reasons: dict[str, str]
    unavailable: tuple[str, ...]
    traces: tuple[PreferredAgentTrace, ...]
    hold_minutes: float
    hold_until: datetime | None
    window_ends: dict[str, datetime] = field(default_factory=dict)
    licence_ends: dict[str, tuple[datetime, str]] = field(default_factory=dict)

    def ends_at(self, agent_id: str) -> tuple[datetime, str] | None:
        """When a preferred agent stops being one the case may go to or wait for, and why.

        The earlier of its contact leaving the window and its licence here lapsing;
        ``None``: neither happens.
        """
        found: list[tuple[datetime, str]] = []
        window = self.window_ends.get(agent_id)
        if window is not None:
            found.append((window, "leaves the continuity window then"))
        licence = self.licence_ends.get(agent_id)
        if licence is not None:
            found.append(
                (licence[0], f"is not licensed where the patient is from then ({licence[1]})")
            )
        return min(found, key=lambda end: end[0]) if found else None

    def hold_ends_at(self) -> tuple[datetime, str] | None:
        """When a hold for the unavailable preferred agents ends, and why if before the policy's.

        The hold lasts while one of them may still take the case: never past the ruleset's
        hold (``hold_until``), nor past the instant the last of them leaves the window or
        stops being licensed where the patient is (a hold must not promise an agent who will
        no longer be eligible).

        Returns:
            (the end, the reason words when a lapse ends it before ``hold_until``, else
            ""), or ``None`` when there is no hold.
        """
        if self.hold_until is None:
            return None
        ends = [self.ends_at(a) for a in self.unavailable]
        if not ends or any(end is None for end in ends):
            return self.hold_until, ""
        last = max((end for end in ends if end is not None), key=lambda end: end[0])
        if last[0] < self.hold_until:
            return last
        return self.hold_until, ""

    def lapses_at(self, chosen: str | None, held: bool) -> datetime | None:
        """When a lapsing preference changes this choice through time alone, if it can.

        Args:
            chosen: The agent chosen (after holding).
            held: Whether the case is held for unavailable preferred agents.

        Returns:
            A chosen preferred agent's window end; otherwise ``None`` (a hold's end, early or
            not, is ``hold_ends_at``). An assignment is acted on at once, so a licence lapsing
            after it is not counted (years ahead, it would date nearly every assignment).
        """
        del held  # a hold's early end is the hold's end (``hold_ends_at``)
        if chosen is not None and chosen in self.reasons:
            return self.window_ends.get(chosen)
        return None


def _failure_words(failure: CheckFailure, need: Need, agent: Agent) -> str:
    if failure.check == "licence":
        return f"not licensed in {need.location} ({failure.actual})"
    if failure.check == "capacity":
        return f"at capacity {agent.capacity.active}/{agent.capacity.max}"
    if failure.check == "status":
        return f"status {agent.status.value}"
    if failure.check == "territory":
        return f"territory does not cover {need.region}"
    if failure.check == "language":
        return f"does not speak {need.language}"
    if failure.check == "role":
        return f"role {agent.role.value}, not {failure.expected}"
    if failure.check == "skills":
        return f"lacks {failure.expected} (has {failure.actual})"
    if failure.check == "declined":
        return "declined this case"
    return str(failure)


def sort_preferred(
    case: Case,
    policy: ContinuityPolicy,
    need: Need,
    index: RosterIndex,
    eligible: set[str],
    now: datetime,
) -> ContinuityView:
    """Sort the case's preferred agents into eligible, unavailable and not eligible.

    Args:
        case: The case (its preferred agents, declined agents, urgency and wait anchor).
        policy: The ruleset's continuity policy.
        need: The requirements in force (after relaxation).
        index: The roster's index (agents and their positions).
        eligible: Ids of agents eligible under ``need``.
        now: The decision instant.

    Returns:
        The view ranking and holding read.
    """
    # Before year 1 every contact is inside the window: datetime.min stands for that.
    window_start = shift(now, -timedelta(days=policy.window_days)) or datetime.min.replace(
        tzinfo=UTC
    )
    hold = policy.hold_minutes.get(case.urgency, 0.0)
    anchor = case.wait_anchor.astimezone(UTC)  # UTC like every instant of a decision
    # A hold that would end past year 9999 is no hold: never keep a case waiting without end.
    hold_until = shift(anchor, timedelta(minutes=hold)) if hold > 0 else None
    reasons: dict[str, str] = {}
    unavailable: list[str] = []
    traces = []
    window_ends: dict[str, datetime] = {}
    licence_ends: dict[str, tuple[datetime, str]] = {}
    for pref in case.preferred_agents:
        status, detail = "not_eligible", ""
        at = index.positions().get(pref.agent_id)
        agent = index.agents[at] if at is not None else None
        # Half-open window: a contact exactly `window` ago is out, so the instant it leaves is
        # the instant the decision changes (``window_ends_at``).
        if pref.last_contact_at is not None and pref.last_contact_at <= window_start:
            status = "outside_window"
            detail = (
                f"last contact {pref.last_contact_at.date().isoformat()} is outside the "
                f"{policy.window_days:g}-day continuity window"
            )
        elif pref.agent_id.casefold() in need.declined_folded:  # as matching compares them
            status, detail = "declined", "declined this case"
        elif agent is None:
            status, detail = "not_on_roster", "not on the roster snapshot"
        elif pref.agent_id in eligible:
            if pref.agent_id not in reasons:
                reasons[pref.agent_id] = pref.reason.value
            status, detail = "eligible", "eligible"
        else:
            failures = check_agent(need, agent)
            detail = "; ".join(_failure_words(f, need, agent) for f in failures)
            if failures and all(f.check in TRANSIENT_CHECKS for f in failures):
                status = "unavailable"
                unavailable.append(pref.agent_id)
        if status in ("eligible", "unavailable") and pref.last_contact_at is not None:
            lapse = shift(pref.last_contact_at.astimezone(UTC), timedelta(days=policy.window_days))
            if lapse is not None:  # past year 9999 the preference never lapses
                window_ends.setdefault(pref.agent_id, lapse)
        if status == "unavailable" and agent is not None:
            licence_end = licence_changes_at(need, agent, now)
            if licence_end is not None:  # licensed now, so the change is a lapse
                failure = licence_failure(need_at(need, licence_end), agent)
                words = failure.actual if failure is not None else "licence lapses"
                licence_ends.setdefault(pref.agent_id, (licence_end, words))
        traces.append(
            PreferredAgentTrace(
                pref.agent_id, pref.reason.value, pref.last_contact_at, status, detail
            )
        )
    return ContinuityView(
        reasons,
        tuple(unavailable),
        tuple(traces),
        hold,
        hold_until,
        window_ends,
        licence_ends,
    )


def settle(
    view: ContinuityView,
    policy: ContinuityPolicy,
    chosen: str | None,
    may_hold: bool,
    urgency: str,
    now: datetime,
) -> tuple[ContinuityTrace, datetime | None]:
    """Decide what continuity did, and whether the case is held for a preferred agent.

    Args:
        view: The sorted preferred agents.
        policy: The ruleset's continuity policy.
        chosen: The agent ranking chose (preferred agents rank first), or ``None``.
        may_hold: Whether the action may hold (routes may; escalations never wait).
        urgency: The case's urgency, for the words.
        now: The decision instant.

    Returns:
        The trace, and when the hold ends if the case is held (QUEUE until then): the
        ruleset's hold, or earlier when the last agent held for stops being one the case may
        go to (``ContinuityView.hold_ends_at``); ``None`` when not held.
    """
    hold_end = view.hold_ends_at()
    held = (
        chosen not in view.reasons
        and bool(view.unavailable)
        and may_hold
        and hold_end is not None
        and now < hold_end[0]
    )
    if chosen is not None and chosen in view.reasons:
        outcome = ContinuityOutcome.ASSIGNED_PREFERRED
    elif held:
        outcome = ContinuityOutcome.HELD_FOR_PREFERRED
    elif chosen is not None:
        outcome = ContinuityOutcome.ASSIGNED_OTHER
    else:
        outcome = ContinuityOutcome.NONE_ELIGIBLE
    traces = []
    for t in view.traces:
        status, detail = t.status, t.detail
        if status == "eligible":
            status = "chosen" if t.agent_id == chosen else "ranked_lower"
            detail = (
                "eligible and ranked first among the preferred"
                if status == "chosen"
                else "eligible, but another preferred agent ranked higher"
            )
        elif status == "unavailable":
            if held and hold_end is not None and view.hold_until is not None:
                status = "held_for"
                detail += f"; case held until {clock_text(hold_end[0], now)}"
                if hold_end[1]:
                    # The hold ends early: say why, and what the ruleset's hold would have been.
                    detail += (
                        f", not {clock_text(view.hold_until, now)}: the last agent held for "
                        f"{hold_end[1]}"
                    )
            elif not may_hold:
                detail += "; escalations are never held"
            elif view.hold_until is None and view.hold_minutes > 0:
                # Not "not held": the ruleset holds this urgency, but the hold's end is past
                # the calendar, so there is none (review R34a F8).
                detail += (
                    "; the hold would end after the end of 9999-12-31 UTC, the last day a "
                    "decision can carry"
                )
            elif view.hold_until is None:
                detail += f"; {urgency} cases are not held"
            else:
                detail += f"; hold expired {clock_text(view.hold_until, now)}"
        traces.append(PreferredAgentTrace(t.agent_id, t.reason, t.last_contact_at, status, detail))
    trace = ContinuityTrace(
        outcome=outcome,
        window_days=policy.window_days,
        hold_minutes=view.hold_minutes,
        hold_until=view.hold_until,
        preferred=tuple(traces),
    )
    return trace, (hold_end[0] if held and hold_end is not None else None)
