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

from collections.abc import Iterator
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class LicenceFit:
    """How a rule's ``licence:`` fits ``constraints.licence`` for the intents it routes."""

    rule: Rule
    types: tuple[str, ...]
    """The rule's licence types."""
    pinned: frozenset[str] | None
    """The intents its condition allows (``pinned_values``; None: the intent is left open)."""
    missed: list[tuple[Intent, tuple[str, ...]]]
    """Each intent it allows whose constraint shares no type with ``types``, with that
    constraint."""
    never: bool
    """Whether that is every intent it routes, so it can assign nothing: a rule whose
    condition leaves the intent open also routes intents with no constraint, which its types
    may still assign."""


def licence_fits(
    raw: RawRuleset, rules: tuple[Rule, ...] | list[Rule], leaves: dict[str, Leaf]
) -> Iterator[tuple[LicenceFit, dict[Intent, tuple[str, ...]]]]:
    """Each rule that requires a licence, with how it fits, and the constraints it was fitted to.

    The one walk behind ``rules.licence_never_assigns`` (here) and
    ``lint.licence_outside_constraint`` (``rules/lint.py``).

    Args:
        raw: The schema-pass output (the constraints, and which did not read).
        rules: Compiled rules.
        leaves: The ruleset's leaves, to read which intents a rule's condition allows.
    """
    floors = licence_floors(raw)
    for rule in rules:
        need = rule_requirements(rule)
        if need is None or not need.licence_types:
            continue
        pinned = pinned_values(rule.when, leaves, "case.intent")
        types = set(need.licence_types)
        missed = [
            (intent, floor)
            for intent, floor in floors.items()
            if (pinned is None or intent.value in pinned) and not types & set(floor)
        ]
        never = pinned is not None and bool(pinned) and {i.value for i, _ in missed} >= pinned
        yield LicenceFit(rule, need.licence_types, pinned, missed, never), floors


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
    out = []
    for fit, _ in licence_fits(raw, rules, leaves):
        if not fit.never:
            continue
        rule, missed = fit.rule, fit.missed
        names = " or ".join(f"`{i.value}`" for i, _ in missed)
        allows = "; ".join(
            f"constraints.licence.{i.value} allows only {', '.join(floor)}" for i, floor in missed
        )
        hint = next((h for _, floor in missed if (h := case_hint(fit.types, floor))), "")
        out.append(
            Problem(
                "rules.licence_never_assigns",
                f"the rule requires licence {', '.join(fit.types)} and routes only "
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
