"""The ``ladders`` compiler pass: ladders may only widen the pool and never touch hard rules.

Errors (block loading):

* ``ladders.order``: a step takes effect, for some urgency, before a step listed above it.
  Steps are cumulative in the listed order, so an out-of-order delay would make the explanation
  lie about which step is active, and an edit that reorders steps could narrow the pool.
* ``ladders.relaxes_hard``: a rule uses a ladder that relaxes a requirement the rule does not
  mark ``soft`` (the engine would refuse to relax it anyway; the author expected it to).

Warnings (lint; the ruleset still loads):

* ``ladders.unused``: a ladder no rule uses.
* ``ladders.step_unreachable``: a step no case reaching a rule that uses the ladder can ever
  get to (e.g. it has no delay for the only urgency the rule's condition allows).
* ``ladders.step_no_effect``: every requirement a step relaxes was relaxed by an earlier step,
  or is not one the rules using the ladder require.
* ``ladders.soft_unused``: ``soft``/``prefer`` names a requirement the action does not apply.
* ``ladders.soft_never_relaxes``: soft requirements without a ladder (they stay required).
"""

from __future__ import annotations

from caseroute.domain.case import Urgency
from caseroute.domain.errors import Problem, Severity
from caseroute.rules.adaptive import LadderGaps
from caseroute.rules.ir import Leaf, pinned_values
from caseroute.rules.model import (
    EscalateAction,
    Ladder,
    LadderStep,
    Requirements,
    RouteAction,
    Rule,
)


def applied_requirements(req: Requirements) -> frozenset[str]:
    """The soft-able requirements an action actually applies (before any relaxation).

    Args:
        req: The action's requirements.

    Returns:
        Names from ``SOFT_REQUIREMENTS`` the action checks (skills counts when the case's
        skills apply or the action names some).
    """
    out = set()
    if req.territory:
        out.add("territory")
    if req.language:
        out.add("language")
    if req.case_skills or req.skills:
        out.add("skills")
    if req.roles is not None:
        out.add("roles")
    return frozenset(out)


def rule_requirements(rule: Rule) -> Requirements | None:
    """The requirements an agent must meet under a rule's action (``None``: no agent)."""
    action = rule.action
    if isinstance(action, RouteAction):
        return action.requirements
    if isinstance(action, EscalateAction):
        return action.assign
    return None


def _problem(
    code: str, message: str, file: str, line: int, rule_id: str | None, warning: bool
) -> Problem:
    severity = Severity.WARNING if warning else Severity.ERROR
    return Problem(code, message, file, line, 0, rule_id, severity)


def _order(ladder: Ladder, file: str) -> tuple[list[Problem], set[str]]:
    """``ladders.order`` findings, and the names of the steps they are about.

    Which step comes "earlier" is what such a finding disputes, so the steps it names are
    not also judged "without effect" (one mistake, one finding; the redundancy, if any, is
    reported once the order is fixed).
    """
    # Per urgency, the latest delay of any step listed so far and that step's name: a later
    # step must not take effect before it, even across steps that skip the urgency.
    latest: dict[Urgency, tuple[float, str]] = {}
    # Earlier step -> the later steps taking effect before it (step, urgency, delay, its delay).
    # One finding per earlier step: a step listed too early is one mistake, however many steps
    # below it take effect sooner.
    undercut: dict[str, list[tuple[LadderStep, Urgency, float, float]]] = {}
    for step in ladder.steps:
        for urgency in Urgency:
            after = step.after.get(urgency)
            if after is None:
                continue
            before, earlier = latest.get(urgency, (after, step.name))
            if after < before:
                undercut.setdefault(earlier, []).append((step, urgency, after, before))
                break
        for urgency, after in step.after.items():
            if after >= latest.get(urgency, (after, ""))[0]:
                latest[urgency] = (after, step.name)
    out = []
    disputed: set[str] = set()
    for earlier, found in undercut.items():
        disputed.add(earlier)
        disputed.update(s.name for s, _, _, _ in found)
        step, urgency, after, before = found[0]
        also = "".join(
            f"; so does step `{s.name}` ({a:g} min for {u.value} cases)" for s, u, a, _ in found[1:]
        )
        fix = (
            f"list them by delay (move `{earlier}` below them), or make these delays at least "
            "the one above"
            if also
            else "list them by delay, or make this delay at least the one above"
        )
        out.append(
            _problem(
                "ladders.order",
                f"step `{step.name}` of ladder `{ladder.name}` takes effect after {after:g} min "
                f"for {urgency.value} cases, before step `{earlier}` listed above it "
                f"({before:g} min){also}. Steps take effect in the order listed and each keeps "
                f"what the earlier ones relaxed: {fix}",
                file,
                step.line,
                None,
                warning=False,
            )
        )
    return out, disputed


def _urgencies(rule: Rule, leaves: dict[str, Leaf]) -> frozenset[Urgency]:
    pinned = pinned_values(rule.when, leaves, "case.urgency")
    if pinned is None:
        return frozenset(Urgency)
    return frozenset(u for u in Urgency if u.value in pinned)


def check_ladders(
    ladders: dict[str, Ladder],
    rules: tuple[Rule, ...],
    leaves: dict[str, Leaf],
    file: str,
    gaps: LadderGaps | None = None,
    *,
    rules_dropped: bool = False,
) -> list[Problem]:
    """Run the ladder checks over a ruleset's ladders and the rules that use them.

    Args:
        ladders: Ladders by name.
        rules: Compiled rules.
        leaves: Leaf table (to see which urgencies a rule's condition allows).
        file: Source path.
        gaps: What the schema could not read (each already an error): no finding here that
            only follows from it (one mistake, one finding). A rule whose `ladder:` could not
            be resolved gets no "soft never relaxes"; a rule whose `soft`/`prefer` could not be
            read in full gets no "relaxes hard" (what it meant to list is unknown); a step whose
            `after` or `relax`/`prefer` could not be read is not "unreachable" or "without
            effect".
        rules_dropped: A written rule did not compile (already an error): it may use any
            ladder, so none is reported unused (review R34b F2).

    Returns:
        Errors and warnings (see the module docstring).
    """
    gaps = LadderGaps() if gaps is None else gaps
    out: list[Problem] = []
    users: dict[str, list[tuple[Rule, Requirements]]] = {name: [] for name in ladders}
    relaxing_hard: set[tuple[str, str]] = set()  # (ladder, step) already an error
    for rule in rules:
        req = rule_requirements(rule)
        if req is None:
            continue
        applied = applied_requirements(req)
        out.extend(
            _problem(
                "ladders.soft_unused",
                f"`{name}` is listed as soft or preferred, but the action does not "
                f"require it (e.g. `{name}: false` or no {name} given), so it has no "
                "effect; remove it",
                file,
                rule.line,
                rule.rule_id,
                warning=True,
            )
            for name in dict.fromkeys((*req.soft, *req.prefer))
            if name not in applied
        )
        if req.ladder is None:
            if req.soft and rule.rule_id not in gaps.unknown_ladder_rules:
                out.append(
                    _problem(
                        "ladders.soft_never_relaxes",
                        f"{', '.join(req.soft)} marked soft but the action names no `ladder`, "
                        "so it stays required; add `ladder: <name>` or `prefer:` it",
                        file,
                        rule.line,
                        rule.rule_id,
                        warning=True,
                    )
                )
            continue
        users.setdefault(req.ladder.name, []).append((rule, req))
        if rule.rule_id in gaps.rules_unread_soft:
            continue
        for step in req.ladder.steps:
            hard = [n for n in step.relaxes if n not in req.soft and n not in req.prefer]
            hard = [n for n in hard if n in applied]
            if hard:
                relaxing_hard.add((req.ladder.name, step.name))
                out.append(
                    _problem(
                        "ladders.relaxes_hard",
                        f"rule `{rule.rule_id}` uses ladder `{req.ladder.name}`, whose step "
                        f"`{step.name}` relaxes {', '.join(hard)}, which the rule holds hard. "
                        f"Add {', '.join(hard)} to the rule's `soft:` list, or give the rule a "
                        "ladder that leaves it required",
                        file,
                        step.line,
                        rule.rule_id,
                        warning=False,
                    )
                )
    for name, ladder in ladders.items():
        order, disputed = _order(ladder, file)
        disputed_steps = {(name, step) for step in disputed}
        out += order
        using = users.get(name, [])
        if not using and (gaps.unknown_ladder_rules or rules_dropped):
            continue  # a rule names a ladder that is not there, or a rule did not compile:
            # it may have meant (or used) this one
        if not using:
            out.append(
                _problem(
                    "ladders.unused",
                    f"ladder `{name}` is not used by any rule; remove it or name it in a "
                    "rule's `ladder:`",
                    file,
                    ladder.line,
                    None,
                    warning=True,
                )
            )
            continue
        out += _reachability(ladder, using, leaves, file, relaxing_hard | disputed_steps, gaps)
    return out


def _reachability(
    ladder: Ladder,
    using: list[tuple[Rule, Requirements]],
    leaves: dict[str, Leaf],
    file: str,
    already_errors: set[tuple[str, str]],
    gaps: LadderGaps,
) -> list[Problem]:
    out = []
    seen: set[Urgency] = set()
    for rule, _ in using:
        seen |= _urgencies(rule, leaves)
    relaxable: set[str] = set()
    for rule, req in using:
        if rule.rule_id in gaps.rules_unread_soft:
            # Its soft list lost an entry (already an error): it may have meant any of them.
            relaxable |= applied_requirements(req)
        else:
            relaxable |= (set(req.soft) | set(req.prefer)) & applied_requirements(req)
    earlier: set[str] = set()
    for step in ladder.steps:
        key = (ladder.name, step.name)
        if key in gaps.steps_unread_after and not seen & set(step.after):
            pass  # its `after` is already an error: "never applies" would only repeat it
        elif not seen & set(step.after):
            wanted = ", ".join(sorted(u.value for u in seen))
            out.append(
                _problem(
                    "ladders.step_unreachable",
                    f"step `{step.name}` of ladder `{ladder.name}` never applies: the rules "
                    f"using the ladder only see {wanted} cases and the step gives no delay for "
                    "them; add one to its `after`, or remove the step",
                    file,
                    step.line,
                    None,
                    warning=True,
                )
            )
        elif key in already_errors or key in gaps.steps_unread_relaxes:
            pass  # already an error (relaxes_hard, order, or its relax/prefer): not "no effect"
        elif not (set(step.relaxes) & relaxable) - earlier:
            out.append(
                _problem(
                    "ladders.step_no_effect",
                    f"step `{step.name}` of ladder `{ladder.name}` changes nothing: what it "
                    "relaxes was relaxed by an earlier step, or is not a soft requirement of "
                    "the rules using the ladder; remove it or change what it relaxes",
                    file,
                    step.line,
                    None,
                    warning=True,
                )
            )
        earlier |= set(step.relaxes)
    return out
