"""Rule licences against `constraints.licence`: a rule that can never assign is an error.

A rule's ``licence:`` narrows the constraint for a case's intent and never widens it
(``engine/matching.py``), so a rule whose types share none with the constraint of every
intent it routes (``licence: [Rn]`` on a clinical rule whose constraint is ``[RN]``) accepts
no type for any case it takes: each one queues for nobody, as ``licence: []`` would (an error
already). Such a rule is ``rules.licence_never_assigns``, an error; a rule that misses the
constraint for only some of the intents it routes still assigns the others and is warned
about (``lint.licence_outside_constraint``, ``rules/lint.py``).
"""

from __future__ import annotations

from caseroute.domain.case import Intent
from caseroute.domain.errors import Problem, Severity
from caseroute.rules.ir import Leaf, pinned_values
from caseroute.rules.ladder_checks import rule_requirements
from caseroute.rules.model import Rule
from caseroute.rules.schema import RawRuleset


def licence_floors(raw: RawRuleset) -> dict[Intent, tuple[str, ...]]:
    """``constraints.licence`` by intent, without the entries that did not read.

    An intent whose types did not all read (an error already) is not judged against what was
    left of them: "allows only :" was a second finding for the same mistake.
    """
    floors = raw.constraints.licence_by_intent if raw.constraints is not None else {}
    return {i: types for i, types in floors.items() if i.value not in raw.constraint_gaps}


def missed_floors(
    rule: Rule, floors: dict[Intent, tuple[str, ...]], leaves: dict[str, Leaf]
) -> tuple[list[tuple[Intent, tuple[str, ...]]], bool]:
    """The constraints a rule's licence types miss, and whether it can then assign nothing.

    Args:
        rule: A compiled rule.
        floors: ``licence_floors`` of its ruleset.
        leaves: The ruleset's leaves, to read which intents the rule's condition allows.

    Returns:
        Each intent its condition allows whose constraint shares no type with the rule's
        ``licence:`` (with that constraint), and True when that is every intent it routes: a
        rule whose condition leaves the intent open also routes intents with no constraint,
        which its types may still assign.
    """
    need = rule_requirements(rule)
    if need is None or not need.licence_types or not floors:
        return [], False
    pinned = pinned_values(rule.when, leaves, "case.intent")
    types = set(need.licence_types)
    missed = [
        (intent, floor)
        for intent, floor in floors.items()
        if (pinned is None or intent.value in pinned) and not types & set(floor)
    ]
    never = pinned is not None and bool(pinned) and {i.value for i, _ in missed} >= pinned
    return missed, never


def case_hint(written: tuple[str, ...], floor: tuple[str, ...]) -> str:
    """`` (did you mean `RN` for `Rn`?)`` when a written type is an allowed one in other letters."""
    return next(
        (
            f" (did you mean `{allowed}` for `{mine}`?)"
            for mine in written
            for allowed in floor
            if mine.casefold() == allowed.casefold()
        ),
        "",
    )


def check_rule_licences(
    raw: RawRuleset, rules: tuple[Rule, ...], leaves: dict[str, Leaf], file: str
) -> list[Problem]:
    """``rules.licence_never_assigns``: a rule whose licence no constraint it meets allows.

    Args:
        raw: The schema-pass output (the constraints, and which did not read).
        rules: Compiled rules.
        leaves: Leaf table.
        file: Source path.

    Returns:
        One error per such rule, at the rule.
    """
    floors = licence_floors(raw)
    out = []
    for rule in rules:
        need = rule_requirements(rule)
        if need is None or not need.licence_types:
            continue
        missed, never = missed_floors(rule, floors, leaves)
        if not never:
            continue
        names = " or ".join(f"`{i.value}`" for i, _ in missed)
        allows = "; ".join(
            f"constraints.licence.{i.value} allows only {', '.join(floor)}" for i, floor in missed
        )
        hint = next((h for _, floor in missed if (h := case_hint(need.licence_types, floor))), "")
        out.append(
            Problem(
                "rules.licence_never_assigns",
                f"the rule requires licence {', '.join(need.licence_types)} and routes only "
                f"{names} cases, but {allows}: a rule narrows that list and never widens it, so "
                f"this rule can never assign a case: each one it takes queues for nobody{hint}; "
                "list types the constraint allows, or, to send these cases to a queue for "
                "people to pick up, write `escalate:` without `assign`",
                file,
                rule.line,
                0,
                rule.rule_id,
                Severity.ERROR,
            )
        )
    return out
