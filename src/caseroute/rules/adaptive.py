"""Schema of adaptive routing: relaxation ladders, continuity of care, and soft requirements.

Read as part of the schema pass (``schema.read_ruleset`` calls in here), with the same
``file:line`` problems. The cross-rule checks (ladder order, hard requirements, unreachable
steps) are the ``ladders`` compiler pass in ``ladder_checks.py``.

Syntax (docs/rulesets.md has the policy reasoning and a worked example)::

    ladders:
      language-then-territory:
        - step: any-language
          after: {routine: 10m, urgent: 10m, critical: 0m}   # or one delay for every urgency
          prefer: [language]        # no longer required, still ranks speakers first
          why: A nurse with an interpreter beats a longer wait.
        - step: any-territory
          after: 30m
          relax: [territory]        # no longer required at all
          why: ...
    continuity:
      window: 365d                  # older last contacts are ignored
      hold: {routine: 15m}          # how long a case may wait for a preferred agent

and on a ``route`` or ``escalate.assign``: ``soft: [language]``, ``prefer: [language]``,
``ladder: <name>``, ``continuity: false``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from caseroute.domain.case import Urgency
from caseroute.rules.model import (
    HARD_REQUIREMENTS,
    SOFT_REQUIREMENTS,
    ContinuityPolicy,
    Ladder,
    LadderStep,
)
from caseroute.rules.source import Node

if TYPE_CHECKING:
    from caseroute.rules.schema import SchemaReader

STEP_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
DURATION_RE = re.compile(r"(\d{1,6}(?:\.\d{1,3})?)\s*(m|min|h|d)")
_UNIT_MINUTES = {"m": 1.0, "min": 1.0, "h": 60.0, "d": 1440.0}
MAX_STEPS = 16
MAX_LADDERS = 32
MAX_DURATION_DAYS = 3650
"""Longest delay, hold or window: the engine counts it from (or back from) real instants, and a
longer one could leave the calendar (a 999999d window would fail every decision)."""
_DURATION_HINT = "a duration such as 10m, 2h or 30d (0 for at once)"


@dataclass(slots=True)
class LadderGaps:
    """What the schema could not read of ladders and the rules' soft lists (each already an error).

    The ``ladders`` pass reads this so that one mistake is one finding: it does not go on to
    report what only follows from the unread part (a step whose `relax:` could not be read
    "changes nothing"; a rule whose `soft:` entry could not be read "holds hard" what its ladder
    relaxes).

    Attributes:
        unknown_ladder_rules: Rules whose `ladder:` names no ladder that could be read (an
            undeclared name, or a ladder declared under an invalid name).
        invalid_ladder_names: Ladder names declared but refused (``schema.format``).
        steps_unread_after: (ladder, step) whose `after` could not be read in full.
        steps_unread_relaxes: (ladder, step) whose `relax`/`prefer` could not be read in full,
            or that has neither.
        rules_unread_soft: Rules whose `soft`/`prefer` list could not be read in full.
    """

    unknown_ladder_rules: set[str] = field(default_factory=set)
    invalid_ladder_names: set[str] = field(default_factory=set)
    steps_unread_after: set[tuple[str, str]] = field(default_factory=set)
    steps_unread_relaxes: set[tuple[str, str]] = field(default_factory=set)
    rules_unread_soft: set[str] = field(default_factory=set)


def read_duration(
    r: SchemaReader, node: Node, what: str, rule_id: str | None = None
) -> float | None:
    """Minutes from ``10m`` / ``2h`` / ``30d`` / ``0`` (a bare number is refused: units matter).

    Args:
        r: The schema reader collecting problems.
        node: The value.
        what: How messages name it.
        rule_id: Rule it is in, if any.

    Returns:
        Minutes, or ``None`` after reporting a problem.
    """
    value = node.value
    if value == 0 and not isinstance(value, bool):
        return 0.0
    if isinstance(value, str):
        match = DURATION_RE.fullmatch(value.strip())
        if match:
            minutes = float(match.group(1)) * _UNIT_MINUTES[match.group(2)]
            if minutes > MAX_DURATION_DAYS * 1440:
                r.error(
                    "schema.range",
                    f"{what} must be at most {MAX_DURATION_DAYS}d (about ten years); got {value}",
                    node,
                    rule_id,
                )
                return None
            return minutes
    r.error(
        "schema.format",
        f"{what} must be {_DURATION_HINT}; got {value!r}"
        + (" (a bare number has no unit: write 10m)" if isinstance(value, int | float) else ""),
        node,
        rule_id,
    )
    return None


def read_by_urgency(
    r: SchemaReader, node: Node, what: str, rule_id: str | None = None
) -> dict[Urgency, float]:
    """One delay for every urgency, or a mapping ``{routine: 10m, urgent: 0m}``.

    Args:
        r: The schema reader collecting problems.
        node: The value.
        what: How messages name it.
        rule_id: Rule it is in, if any.

    Returns:
        Minutes per urgency given (an urgency left out is absent).
    """
    if node.is_mapping:
        entries = r.mapping(node, what, (), tuple(u.value for u in Urgency), rule_id)
        out: dict[Urgency, float] = {}
        for key, value in entries.items():
            minutes = read_duration(r, value, f"{what}.{key}", rule_id)
            if minutes is not None:
                out[Urgency(key)] = minutes
        return out
    minutes = read_duration(r, node, what, rule_id)
    return {} if minutes is None else dict.fromkeys(Urgency, minutes)


def read_requirement_names(
    r: SchemaReader, node: Node | None, what: str, rule_id: str | None = None
) -> tuple[str, ...]:
    """A list of soft-able requirement names; a hard one is refused with ``ladders.hard``.

    Args:
        r: The schema reader collecting problems.
        node: The list.
        what: How messages name it (``rule clinical route.soft``).
        rule_id: Rule it is in, if any.

    Returns:
        The valid names, in order, each once.
    """
    out: list[str] = []
    for item in r.items(node, what, rule_id):
        name = item.value
        if not isinstance(name, str):
            r.error(
                "schema.type", f"each entry of {what} must be a requirement name", item, rule_id
            )
            continue
        if name in HARD_REQUIREMENTS:
            r.error(
                "ladders.hard",
                f"`{name}` in {what} is a hard requirement: licence, consent, safeguarding, "
                "declined agents, status and capacity never relax. Remove it; only "
                f"{', '.join(SOFT_REQUIREMENTS)} can be soft",
                item,
                rule_id,
            )
            continue
        if name not in SOFT_REQUIREMENTS:
            hint = difflib.get_close_matches(name, SOFT_REQUIREMENTS, n=1)
            tip = f"did you mean `{hint[0]}`?" if hint else f"one of {', '.join(SOFT_REQUIREMENTS)}"
            r.error(
                "schema.value", f"unknown requirement `{name}` in {what} ({tip})", item, rule_id
            )
            continue
        if name in out:
            r.error("schema.value", f"`{name}` is listed twice in {what}", item, rule_id)
            continue
        out.append(name)
    return tuple(out)


def read_ladders(r: SchemaReader, node: Node | None) -> dict[str, Ladder]:
    """The ``ladders:`` section: name -> ordered steps.

    Args:
        r: The schema reader collecting problems.
        node: The section, if present.

    Returns:
        Ladders that could be read (a ladder with a broken step is still returned without it,
        so rules that name it do not also report an unknown ladder).
    """
    if node is None:
        return {}
    if not node.is_mapping:
        r.error("schema.type", "`ladders` must map ladder names to lists of steps", node)
        return {}
    if len(node.value) > MAX_LADDERS:
        r.error("limit.ladders", f"at most {MAX_LADDERS} ladders; found {len(node.value)}", node)
    ladders: dict[str, Ladder] = {}
    for name, steps_node in node.value.items():
        line = node.key_positions.get(name, (steps_node.line, 0))[0]
        if not STEP_RE.fullmatch(name):
            r.ladder_gaps.invalid_ladder_names.add(name)
            r.error(
                "schema.format",
                f"ladder name `{name}` is not valid (lower-case letters, digits, - and _)",
                line,
            )
            continue
        items = r.items(steps_node, f"ladder `{name}`")
        if steps_node.is_sequence and not items:
            r.error("schema.value", f"ladder `{name}` has no steps; give it at least one", line)
        if len(items) > MAX_STEPS:
            r.error(
                "limit.ladders",
                f"ladder `{name}` has {len(items)} steps; at most {MAX_STEPS}",
                line,
            )
        steps: list[LadderStep] = []
        for item in items[:MAX_STEPS]:
            step = _read_step(r, item, name)
            if step is None:
                continue
            if any(s.name == step.name for s in steps):
                r.error("schema.value", f"ladder `{name}` has two steps named `{step.name}`", item)
                continue
            steps.append(step)
        ladders[name] = Ladder(name, tuple(steps), line)
    return ladders


def _read_step(r: SchemaReader, node: Node, ladder: str) -> LadderStep | None:
    what = f"a step of ladder `{ladder}`"
    e = r.mapping(node, what, ("step", "after", "why"), ("relax", "prefer"))
    if not e:
        return None
    name = r.string(e.get("step"), f"{what}: `step` (its name)", pattern=STEP_RE)
    where = f"step `{name or '?'}` of ladder `{ladder}`"
    reported = len(r.problems)
    after = read_by_urgency(r, e["after"], f"{where}: after") if "after" in e else {}
    if len(r.problems) > reported:
        r.ladder_gaps.steps_unread_after.add((ladder, name or "?"))
    reported = len(r.problems)
    relax = read_requirement_names(r, e.get("relax"), f"{where}: relax")
    prefer = read_requirement_names(r, e.get("prefer"), f"{where}: prefer")
    if len(r.problems) > reported or ("relax" not in e and "prefer" not in e):
        r.ladder_gaps.steps_unread_relaxes.add((ladder, name or "?"))
    why = r.string(e.get("why"), f"{where}: why")
    both = set(relax) & set(prefer)
    if both:
        r.error(
            "schema.value",
            f"{where} lists {', '.join(sorted(both))} under both relax and prefer; "
            "keep one (prefer keeps it as a ranking preference)",
            node,
        )
    if "relax" not in e and "prefer" not in e:
        r.error(
            "schema.missing_key",
            f"{where} needs `relax:` or `prefer:` (the requirements it stops requiring)",
            node,
        )
    if name is None or why is None or "after" not in e:
        return None
    return LadderStep(name, after, relax, prefer, why, node.line)


def read_continuity(r: SchemaReader, node: Node | None) -> ContinuityPolicy | None:
    """The ``continuity:`` section: window for last contacts and holds per urgency.

    Args:
        r: The schema reader collecting problems.
        node: The section, if present.

    Returns:
        The policy, or ``None`` when absent or unreadable (problems reported).
    """
    if node is None:
        return None
    e = r.mapping(node, "`continuity`", ("window",), ("hold",))
    window = read_duration(r, e["window"], "continuity.window") if "window" in e else None
    hold = read_by_urgency(r, e["hold"], "continuity.hold") if "hold" in e else {}
    if window is None:
        return None
    if window <= 0:
        r.error(
            "schema.range",
            "continuity.window must be longer than 0 (how far back a last contact counts)",
            e["window"],
        )
        return None
    return ContinuityPolicy(window / 1440.0, hold, node.line)
